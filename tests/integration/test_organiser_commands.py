"""Organisers decide held answers by replying to the notice: checked, once, with a receipt."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer import admin
from qa_mailer.db import Answer, AnswerState, InboundMessage, MessageKind, MessageState, OutboxKind
from qa_mailer.db.engine import session_factory
from qa_mailer.digest.notices import OrganiserNotices
from qa_mailer.ingest.store import Envelope
from qa_mailer.organise.commands import Command, read_commands
from qa_mailer.templates import Templates
from tests.helpers import ORGANISER, FakeClock, make_mail, write_config
from tests.integration.test_authentication import DOMAIN, PROVIDER
from tests.integration.test_pipeline import Desk, ask, desk, make_desk, plain, reply_to

__all__ = ["desk"]  # the fixture, used by name

PARTICIPANT = "ana@drvo.example.hr"


def test_commands_are_read_from_the_first_lines_only() -> None:
    assert read_commands("approve A-12\n\nReject a13, A-14.\nThanks\napprove A-15") == [
        Command(True, (12,)),
        Command(False, (13, 14)),
    ]
    assert read_commands("APPROVE ALL") == [Command(True, None)]
    # A greeting first, a verb in a sentence, a quote of the notice: no command.
    assert read_commands("Hi,\napprove A-12") == []
    assert read_commands("I would not approve A-12") == []
    assert read_commands("      publish it: qa-mailer held approve A-12") == []


async def held_and_told(desk: Desk, body: str = "Forged or private answer") -> EmailMessage:
    """A question, a reply from a private address (held), and the notice about it."""
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    held = await desk.receive(reply_to(route, body, sender="expert.private@mail.example.org"))
    assert held.state == MessageState.HELD
    notices = OrganiserNotices(desk.config, session_factory(desk.engine), Templates(), desk.clock)
    assert await notices.send_due() == [held.message_id]
    [notice] = await desk.outbox(OutboxKind.NOTICE)
    return notice


def answer_to_notice(
    notice: EmailMessage,
    body: str,
    sender: str = ORGANISER,
    headers: dict[str, str] | None = None,
) -> bytes:
    return make_mail(
        sender=sender,
        to=str(notice["Reply-To"]),
        subject=f"Re: {notice['Subject']}",
        body=body + "\n\nOn Thursday the service wrote:\n> " + plain(notice).replace("\n", "\n> "),
        in_reply_to=str(notice["Message-ID"]),
        references=str(notice["Message-ID"]),
        headers=headers,
    )


async def answers_to(desk: Desk, address: str) -> list[EmailMessage]:
    return [m for m in await desk.outbox(OutboxKind.ANSWER) if address in str(m["To"])]


async def answer_states(desk: Desk) -> list[str]:
    async with session_factory(desk.engine)() as tx:
        return list(await tx.scalars(select(Answer.state).order_by(Answer.id)))


@pytest.mark.asyncio
async def test_an_organisers_approve_publishes_once_and_a_replay_does_nothing(
    desk: Desk,
) -> None:
    notice = await held_and_told(desk)
    reply_to_address = str(notice["Reply-To"])
    assert reply_to_address.startswith("qa+o") and len(reply_to_address.split("@")[0]) == 24
    text = plain(notice)
    [answer_id] = await held_ids(desk)
    assert f"or reply: approve A-{answer_id}" in text and "approve all" in text
    done = await desk.receive(answer_to_notice(notice, f"approve A-{answer_id}"))
    assert (done.state, done.kind) == (MessageState.PROCESSED, MessageKind.COMMAND)
    assert await answer_states(desk) == [AnswerState.PUBLISHED]
    [answer] = await answers_to(desk, PARTICIPANT)
    assert "Forged or private answer" in plain(answer)
    [receipt] = [m for m in await desk.outbox(OutboxKind.RECEIPT) if m["To"] == ORGANISER]
    assert f"A-{answer_id}  published: sent to the participant (the answer to Q-1)" in plain(
        receipt
    )
    # The same reply again (another copy of it), and "approve all": nothing more goes out.
    again = await desk.receive(
        answer_to_notice(notice, f"approve A-{answer_id}\napprove all"), to=()
    )
    assert again.state == MessageState.PROCESSED
    assert len(await answers_to(desk, PARTICIPANT)) == 1
    receipts = [m for m in await desk.outbox(OutboxKind.RECEIPT) if m["To"] == ORGANISER]
    assert "approve: already published (the answer to Q-1), nothing done" in plain(receipts[-1])
    # The held reply it came in is done with.
    async with session_factory(desk.engine)() as tx:
        states = list(await tx.scalars(select(InboundMessage.state).order_by(InboundMessage.id)))
    assert states[1] == MessageState.PROCESSED


async def held_ids(desk: Desk) -> list[int]:
    async with session_factory(desk.engine)() as tx:
        return list(
            await tx.scalars(
                select(Answer.id).where(Answer.state == AnswerState.HELD).order_by(Answer.id)
            )
        )


@pytest.mark.asyncio
async def test_a_reply_from_someone_else_or_without_a_command_decides_nothing(
    desk: Desk,
) -> None:
    notice = await held_and_told(desk)
    [answer_id] = await held_ids(desk)
    # The notice forwarded to someone who is not an organiser: held, and they hear nothing.
    stranger = await desk.receive(
        answer_to_notice(notice, f"approve A-{answer_id}", sender="mallory@evil.example.org")
    )
    assert stranger.state == MessageState.HELD
    assert "not from an organiser" in (stranger.reason or "")
    assert await answer_states(desk) == [AnswerState.HELD]
    assert not await answers_to(desk, PARTICIPANT)
    assert not [m for m in await desk.outbox() if "mallory" in str(m["To"])]
    # An organiser writing prose: nothing done, and the receipt says how to write it.
    chatty = await desk.receive(answer_to_notice(notice, f"Hi, please approve A-{answer_id}"))
    assert chatty.state == MessageState.IGNORED
    [receipt] = [m for m in await desk.outbox(OutboxKind.RECEIPT) if m["To"] == ORGANISER]
    assert receipt["Subject"].startswith("Receipt: no command found")
    # An answer the notice did not list, and a token nobody was given.
    other = await desk.receive(answer_to_notice(notice, f"approve A-{answer_id + 1}"))
    assert other.state == MessageState.PROCESSED
    forged = make_mail(
        sender=ORGANISER,
        to="qa+o" + "0" * 20 + "@clusters.example.org",
        subject="Re: notice",
        body=f"approve A-{answer_id}",
    )
    guessed = await desk.receive(forged)
    assert guessed.state == MessageState.IGNORED
    assert await answer_states(desk) == [AnswerState.HELD]
    # Past the token's days the organiser's own reply is held, not obeyed.
    desk.clock.advance(days=desk.config.answers.token_valid_days + 1)
    late = await desk.receive(answer_to_notice(notice, f"approve A-{answer_id}"))
    assert late.state == MessageState.HELD and "expired" in (late.reason or "")
    assert await answer_states(desk) == [AnswerState.HELD]
    # Released and processed again: held again (its receipt went already), not quarantined.
    receipts = len(await desk.outbox(OutboxKind.RECEIPT))
    await admin.release_messages(desk.engine, [late.message_id], MessageState.HELD)
    [again] = await desk.pipeline.process_pending()
    assert again.state == MessageState.HELD
    assert len(await desk.outbox(OutboxKind.RECEIPT)) == receipts


@pytest.mark.asyncio
async def test_two_organisers_approving_at_once_publish_once(desk: Desk) -> None:
    notice = await held_and_told(desk)
    [answer_id] = await held_ids(desk)
    first = await desk.store.store(
        answer_to_notice(notice, f"approve A-{answer_id}"), Envelope(source="imap")
    )
    second = await desk.store.store(
        answer_to_notice(notice, "approve all"), Envelope(source="imap")
    )
    results = await asyncio.gather(
        desk.pipeline.process(first.id), desk.pipeline.process(second.id)
    )
    assert all(r is not None and r.state == MessageState.PROCESSED for r in results)
    assert len(await answers_to(desk, PARTICIPANT)) == 1
    texts = [plain(m) for m in await desk.outbox(OutboxKind.RECEIPT) if m["To"] == ORGANISER]
    assert sum("published: sent to the participant" in t for t in texts) == 1
    assert sum("already published" in t for t in texts) == 1


@pytest.mark.asyncio
async def test_an_organisers_reply_must_pass_the_authentication_check_where_configured(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(
        tmp_path,
        database_url,
        expert_check={
            "min_reply_seconds": 0,
            "require_authentication": True,
            "trusted_authserv_ids": [PROVIDER],
        },
    )
    desk = await make_desk(config, engine, FakeClock())
    notice = await held_and_told(desk)
    [answer_id] = await held_ids(desk)

    def verdict(result: str) -> dict[str, str]:
        return {"Authentication-Results": f"{PROVIDER}; dmarc={result} header.from={DOMAIN}"}

    # The provider says the organisers' domain failed, or says nothing: held, nothing done.
    failed = await desk.receive(
        answer_to_notice(notice, f"approve A-{answer_id}", headers=verdict("fail"))
    )
    assert failed.state == MessageState.HELD and "failed" in (failed.reason or "")
    silent = await desk.receive(answer_to_notice(notice, f"approve A-{answer_id}"))
    assert silent.state == MessageState.HELD and "vouches" in (silent.reason or "")
    assert await answer_states(desk) == [AnswerState.HELD]
    # Vouched for: the answer goes out.
    passed = await desk.receive(
        answer_to_notice(notice, f"approve A-{answer_id}", headers=verdict("pass"))
    )
    assert passed.state == MessageState.PROCESSED
    assert await answer_states(desk) == [AnswerState.PUBLISHED]
    assert len(await answers_to(desk, PARTICIPANT)) == 1


@pytest.mark.asyncio
async def test_the_command_line_and_a_reply_decide_through_the_same_function(desk: Desk) -> None:
    notice = await held_and_told(desk)
    [answer_id] = await held_ids(desk)
    [answer], _ = await admin.decide_answers(desk.engine, desk.config, [answer_id], approve=True)
    assert (answer.id, answer.question.ref, answer.state) == (answer_id, "Q-1", "published")
    with pytest.raises(admin.NotFound):
        await admin.decide_answers(desk.engine, desk.config, [answer_id], approve=True)
    # The organiser who replies afterwards learns it was done already.
    await desk.receive(answer_to_notice(notice, f"approve A-{answer_id}"))
    assert len(await answers_to(desk, PARTICIPANT)) == 1
    [receipt] = [m for m in await desk.outbox(OutboxKind.RECEIPT) if m["To"] == ORGANISER]
    assert "already published" in plain(receipt)
