"""Bounces for participants: read (DSN and non-standard), matched to our mail, shown."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from qa_mailer.classify.roster import load_roster
from qa_mailer.db import Bounce, MessageState, OutboxKind, OutboxMail, OutboxState
from qa_mailer.db.engine import session_factory
from qa_mailer.digest.build import build_digest
from qa_mailer.send.sender import Sender
from qa_mailer.send.transport import make_transport
from qa_mailer.status import format_status, gather_status
from qa_mailer.templates import Templates
from tests.helpers import DATA, registered
from tests.integration.test_pipeline import Desk, ask, desk, reply_to

__all__ = ["desk"]  # the fixture, used by name


def bounce_of(name: str, message_id: str) -> bytes:
    raw = (DATA / "mail" / f"{name}.eml").read_bytes()
    return raw.replace(b"ORIGINAL_MESSAGE_ID", message_id.encode())


async def bounces(desk: Desk) -> list[Bounce]:
    async with session_factory(desk.engine)() as db:
        return list(await db.scalars(select(Bounce).order_by(Bounce.id)))


@pytest.mark.parametrize("name", ["bounce_dsn_postfix_user_unknown", "bounce_exim_mailbox_full"])
@pytest.mark.asyncio
async def test_a_bounced_answer_is_recorded_and_shown_in_status_and_the_digest(
    desk: Desk, name: str
) -> None:
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    await desk.receive(reply_to(route, "The chamber leads first."))
    [answer] = await desk.outbox(OutboxKind.ANSWER)
    desk.clock.advance(minutes=5)
    outcome = await desk.receive(bounce_of(name, str(answer["Message-ID"])))
    assert outcome.state == MessageState.IGNORED
    assert (outcome.reason or "").startswith("bounce: ana@drvo.example.hr (permanent)")
    [bounce] = await bounces(desk)
    assert (bounce.address, bounce.permanent, bounce.kind) == (
        "ana@drvo.example.hr",
        True,
        "answer",
    )
    [question] = await desk.questions()
    assert bounce.question_id == question.id
    async with session_factory(desk.engine)() as db:
        status = format_status(await gather_status(db, desk.clock.now()), desk.config)
        digest = await build_digest(
            db,
            desk.config,
            load_roster(desk.config.roster, desk.config.countries),
            2,
            desk.clock.now(),
        )
    assert "Bounces: 1 address(es) bounced" in status
    assert "ana@drvo.example.hr" in status and "answer about Q-1" in status
    text = Templates().render("digest.txt", digest=digest)
    assert "NOT DELIVERED: bounced from ana@drvo.example.hr (answer, permanent)" in text
    assert "1 question with mail that bounced" in text
    # The bounce is news for the next digest.
    assert digest.news_between(datetime(2026, 12, 3, 12, 31, tzinfo=UTC), desk.clock.now()) == 1


@pytest.mark.asyncio
async def test_an_out_of_office_from_a_person_is_no_bounce(desk: Desk) -> None:
    away = ask(
        subject="Automatic reply: [VC2] Tko upravlja klasterom?",
        body="I am out of the office. Write to ana.backup@drvo.example.hr instead.",
        headers={"Auto-Submitted": "auto-replied"},
    )
    outcome = await desk.receive(away)
    assert outcome.state == MessageState.IGNORED
    assert not (outcome.reason or "").startswith("bounce")
    assert await bounces(desk) == []


@pytest.mark.asyncio
async def test_an_address_that_bounced_for_good_three_times_is_sent_no_more(desk: Desk) -> None:
    sessions = session_factory(desk.engine)
    config = desk.config
    sender = Sender(
        sessions,
        make_transport("maildir", config.outgoing.maildir, None),
        config.outgoing,
        desk.clock,
        await registered(sessions, desk.clock),
    )
    for number in range(1, 5):
        await desk.receive(ask(subject=f"[VC2] Question {number}", body=f"Why {number}?"))
    for number, route in enumerate(await desk.outbox(OutboxKind.ROUTE), start=1):
        await desk.receive(reply_to(route, f"Because {number}."))
    answers = await desk.outbox(OutboxKind.ANSWER)
    assert len(answers) == 4
    # Three answers bounced for good: the fourth is refused before it is sent.
    for answer in answers[:3]:
        desk.clock.advance(minutes=1)
        await desk.receive(bounce_of("bounce_dsn_postfix_user_unknown", str(answer["Message-ID"])))
    assert len({b.message_id for b in await bounces(desk)}) == 3
    await sender.deliver_due()
    async with sessions() as db:
        rows = {
            row.rfc_message_id: row
            for row in await db.scalars(select(OutboxMail).where(OutboxMail.kind == "answer"))
        }
    last = rows[str(answers[3]["Message-ID"])]
    assert last.state == OutboxState.FAILED
    assert "not sent: 3 permanent bounces" in last.outcomes["ana@drvo.example.hr"]["text"]
    delivered = list((config.outgoing.maildir / "new").iterdir())
    assert not any(str(answers[3]["Message-ID"]).encode() in p.read_bytes() for p in delivered)
    # Everyone else still gets their mail: the expert's receipt went out.
    assert any(b"qa.receipt." in p.read_bytes() for p in delivered)
