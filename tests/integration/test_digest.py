"""Digests: questions by country with states and waits; automatic ones follow the news, once a day."""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import undefer

from qa_mailer.classify.roster import load_roster
from qa_mailer.db import DigestRun, OutboxKind, OutboxMail
from qa_mailer.db.engine import session_factory
from qa_mailer.digest.build import build_digest
from qa_mailer.digest.schedule import DigestScheduler
from qa_mailer.ingest.store import Envelope
from qa_mailer.templates import Templates
from tests.helpers import ORGANISER, FakeClock, make_mail, write_config
from tests.integration.test_pipeline import Desk, make_desk, plain, reply_to


@pytest.mark.asyncio
async def test_the_digest_groups_questions_by_country_with_states_and_waits(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url)
    desk = await make_desk(config, engine, FakeClock())
    for sender, subject in [
        ("ana@drvo.example.hr", "[VC1] Who leads?"),
        ("petar@mebeli.example.bg", "[VC1] Trust?"),
        ("ivan@zavod.example.ru", "[VC1] Universities?"),
        ("someone@gmail.example.com", "[VC1] Anything?"),
        ("olga@mebel.example.ru", "[VC2] Not this session"),
    ]:
        await desk.receive(make_mail(sender=sender, subject=subject, body=f"Question: {subject}"))
        desk.clock.advance(minutes=10)
    routes = await desk.outbox(OutboxKind.ROUTE)
    desk.clock.advance(hours=2)
    await desk.receive(
        reply_to(routes[0], "The chamber leads first.")
    )  # Ana's, 2 h 50 min after she asked
    desk.clock.advance(hours=1)
    async with session_factory(engine)() as session:
        digest = await build_digest(
            session, config, load_roster(config.roster, config.countries), 1, desk.clock.now()
        )
    by_code = {c.code: c for c in digest.countries}
    assert list(by_code) == ["BG", "HR", "RS", "TR", "RU", "--"]
    assert (digest.asked, digest.answered, digest.pending) == (4, 1, 3)
    assert [q.ref for q in by_code["HR"].questions] == ["Q-1"] and by_code["HR"].answered == 1
    assert by_code["HR"].questions[0].answers == ("The chamber leads first.",)
    assert by_code["HR"].questions[0].waited_seconds == 2 * 3600 + 50 * 60
    assert (
        by_code["BG"].questions[0].waited_seconds == 3 * 3600 + 40 * 60
    )  # still waiting, counted to now
    assert by_code["RU"].asked == 1 and by_code["RS"].asked == 0 and by_code["--"].asked == 1
    assert by_code["HR"].questions[0].organisation == "Drvo"
    text = Templates().render("digest.txt", digest=digest)
    assert "== Croatia (HR): 1 asked, 1 answered, 0 pending" in text
    assert (
        "Q-1 [answered] Ana Horvat <ana@drvo.example.hr>, Drvo" in text
        and "answered after 2 h 50 min" in text
    )
    assert "== Country not assigned (--): 1 asked" in text and "Not this session" not in text
    html = Templates().render("digest.html", digest=digest)
    assert "<td>Croatia (HR)</td><td>1</td><td>1</td>" in html


def scheduler(desk: Desk) -> DigestScheduler:
    config = desk.config
    return DigestScheduler(
        config,
        session_factory(desk.engine),
        load_roster(config.roster, config.countries),
        Templates(),
        desk.clock,
    )


async def digest_subjects(desk: Desk) -> list[str]:
    return [str(m["Subject"]) for m in await desk.outbox(OutboxKind.DIGEST)]


@pytest.mark.asyncio
async def test_questions_days_after_the_session_make_daily_digests_and_never_an_empty_one(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    # The organisers are in Sofia (UTC+2 in December) and read the digest at 08:00 there,
    # 06:00 UTC. VC1 ends on 3 December at 16:00 UTC; its questions come on the days after.
    desk = await make_desk(write_config(tmp_path, database_url), engine, FakeClock())
    digests = scheduler(desk)
    desk.clock.moment = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)
    assert await digests.send_due() == []  # ended, but nothing asked: no empty digest
    desk.clock.moment = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
    assert await digests.send_due() == []
    desk.clock.moment = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    await desk.receive(make_mail(sender="ana@drvo.example.hr", subject="[VC1] Who leads?"))
    desk.clock.advance(minutes=1)
    assert await digests.send_due() == []  # news after today's hour waits for tomorrow's
    desk.clock.moment = datetime(2026, 12, 5, 5, 59, tzinfo=UTC)
    assert await digests.send_due() == []  # 07:59 in Sofia
    desk.clock.moment = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    assert await digests.send_due() == [1]
    assert await digests.send_due() == []  # at most once a day
    desk.clock.moment = datetime(2026, 12, 5, 11, 0, tzinfo=UTC)
    await desk.receive(make_mail(sender="petar@mebeli.example.bg", subject="[VC1] Trust?"))
    desk.clock.moment = datetime(2026, 12, 6, 6, 1, tzinfo=UTC)
    assert await digests.send_due() == [1]
    desk.clock.moment = datetime(2026, 12, 7, 6, 1, tzinfo=UTC)
    assert await digests.send_due() == []  # no news since yesterday's
    routes = await desk.outbox(OutboxKind.ROUTE)
    await desk.receive(reply_to(routes[0], "The chamber leads first."))
    desk.clock.moment = datetime(2026, 12, 8, 6, 1, tzinfo=UTC)
    assert await digests.send_due() == [1]
    await desk.receive(reply_to(routes[1], "Trust comes from shared work."))
    desk.clock.moment = datetime(2026, 12, 9, 6, 1, tzinfo=UTC)
    assert await digests.send_due() == [1]  # every question answered: the closing digest
    desk.clock.moment = datetime(2026, 12, 10, 6, 1, tzinfo=UTC)
    assert await digests.send_due() == []
    assert await digest_subjects(desk) == [
        "[VC1] Q&A digest: 1 question, 0 answered, 1 pending",
        "[VC1] Q&A digest: 2 questions, 0 answered, 2 pending",
        "[VC1] Q&A digest: 2 questions, 1 answered, 1 pending",
        "[VC1] Closing Q&A digest: 2 questions, 2 answered, 0 pending",
    ]
    second, third = (plain(m) for m in (await desk.outbox(OutboxKind.DIGEST))[1:3])
    # Pending and longest-waiting first, what changed since the last digest marked.
    waiting = second.index("=== Waiting for an answer")
    assert waiting < second.index("\nQ-1 [") < second.index("\n+ Q-2 [")
    assert "since the digest of 2026-12-05 08:00" in second
    assert (
        third.index("=== Waiting for an answer")
        < third.index("\nQ-2 [")
        < third.index("=== Answered since the last digest: 1")
        < third.index("\nQ-1 [answered]")
    )
    # A question after the closing digest opens the session again.
    desk.clock.moment = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
    await desk.receive(make_mail(sender="ivan@zavod.example.ru", subject="[VC1] Universities?"))
    desk.clock.moment = datetime(2026, 12, 11, 6, 1, tzinfo=UTC)
    assert await digests.send_due() == [1]
    assert (await digest_subjects(desk))[-1] == (
        "[VC1] Q&A digest: 3 questions, 2 answered, 1 pending"
    )


@pytest.mark.asyncio
async def test_the_closing_digest_comes_the_set_number_of_days_after_the_session(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(
        tmp_path, database_url, digest={"closing_days": 3, "hour": 9, "timezone": "UTC"}
    )
    desk = await make_desk(config, engine, FakeClock())
    digests = scheduler(desk)
    desk.clock.moment = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    await desk.receive(make_mail(sender="ana@drvo.example.hr", subject="[VC1] Who leads?"))
    desk.clock.moment = datetime(2026, 12, 4, 8, 59, tzinfo=UTC)
    assert await digests.send_due() == []  # 09:00 in the organisers' own zone, UTC here
    desk.clock.moment = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert await digests.send_due() == [1]
    for day in (5, 6):
        desk.clock.moment = datetime(2026, 12, day, 9, 0, tzinfo=UTC)
        assert await digests.send_due() == []
    desk.clock.moment = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # 3 days after VC1's end
    assert await digests.send_due() == [1]
    desk.clock.moment = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    assert await digests.send_due() == []
    assert await digest_subjects(desk) == [
        "[VC1] Q&A digest: 1 question, 0 answered, 1 pending",
        "[VC1] Closing Q&A digest: 1 question, 0 answered, 1 pending",
    ]
    closing = plain((await desk.outbox(OutboxKind.DIGEST))[-1])
    assert "closing time has come with 1 question still waiting" in closing
    assert "made 2026-12-07 09:00 (UTC)" in closing


@pytest.mark.asyncio
async def test_no_digest_goes_before_the_mail_already_waiting_is_processed(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    # The service starts days after the session with a question stored but not yet processed.
    desk = await make_desk(write_config(tmp_path, database_url), engine, FakeClock())
    desk.clock.moment = datetime(2026, 12, 5, 5, 0, tzinfo=UTC)
    stored = await desk.store.store(
        make_mail(sender="ana@drvo.example.hr", subject="[VC1] Who leads?"),
        Envelope(source="imap"),
    )
    desk.clock.moment = datetime(2026, 12, 5, 6, 30, tzinfo=UTC)  # 08:30 in Sofia: due
    digests = scheduler(desk)
    assert await digests.send_due() == []
    assert await desk.pipeline.process(stored.id) is not None
    assert await digests.send_due() == [1]
    assert await digest_subjects(desk) == ["[VC1] Q&A digest: 1 question, 0 answered, 1 pending"]


@pytest.mark.asyncio
async def test_the_automatic_digest_goes_out_once_even_when_two_schedulers_race(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url)
    clock = FakeClock()
    desk = await make_desk(config, engine, clock)
    await desk.receive(
        make_mail(sender="ana@drvo.example.hr", subject="[VC1] Who leads?", body="?")
    )
    roster = load_roster(config.roster, config.countries)
    schedulers = [
        DigestScheduler(config, session_factory(engine), roster, Templates(), clock)
        for _ in range(2)
    ]
    assert await schedulers[0].send_due() == []  # VC1 has not ended yet
    clock.advance(hours=4)  # 16:30 UTC: VC1 has ended, but the question came after 08:00 in Sofia
    assert await schedulers[0].send_due() == []
    clock.moment = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)  # the next day's digest hour
    results = await asyncio.gather(*(s.send_due() for s in schedulers), return_exceptions=True)
    assert [n for r in results if isinstance(r, list) for n in r] == [1]
    assert await schedulers[1].send_due() == []
    async with session_factory(engine)() as session:
        digests = list(
            await session.scalars(
                select(OutboxMail)
                .where(OutboxMail.kind == OutboxKind.DIGEST)
                .options(undefer(OutboxMail.raw))
            )
        )
        runs = list(await session.scalars(select(DigestRun)))
    assert len(digests) == 1 and [r.automatic_key for r in runs] == ["VC1:2026-12-04"]
    message = email.message_from_bytes(digests[0].raw, policy=email.policy.default)
    assert (
        message["To"] == ORGANISER
        and message["Subject"] == "[VC1] Q&A digest: 1 question, 0 answered, 1 pending"
    )
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None
