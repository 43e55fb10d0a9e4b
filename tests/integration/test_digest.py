"""Digests: questions by country with states and waits; the automatic one goes out exactly once."""

from __future__ import annotations

import asyncio
import email
import email.policy
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
from qa_mailer.templates import Templates
from tests.helpers import ORGANISER, FakeClock, make_mail, write_config
from tests.integration.test_pipeline import make_desk, reply_to


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
    clock.advance(hours=3)  # 15:30 UTC: VC1 ends at 16:00, and the digest waits 30 minutes more
    assert await schedulers[0].send_due() == []
    clock.advance(hours=1)  # 16:30 UTC: due
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
    assert len(digests) == 1 and [r.automatic_key for r in runs] == ["VC1"]
    message = email.message_from_bytes(digests[0].raw, policy=email.policy.default)
    assert (
        message["To"] == ORGANISER
        and message["Subject"] == "[VC1] Q&A digest: 1 question, 0 answered, 1 pending"
    )
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None
