"""The programme report: every session and country, on demand and on a schedule, fit to forward."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer import admin
from qa_mailer.classify.roster import load_roster
from qa_mailer.db import OutboxKind
from qa_mailer.db.engine import session_factory
from qa_mailer.digest.programme import build_programme, render_programme
from qa_mailer.digest.schedule import DigestScheduler
from qa_mailer.templates import Templates
from tests.helpers import FakeClock, make_mail, write_config
from tests.integration.test_pipeline import Desk, make_desk, plain, reply_to

# (sender, session tag): BG asks four, HR two, RS one; TR and RU none.
ASKED = [
    ("petar@mebeli.example.bg", "VC1"),
    ("petar@mebeli.example.bg", "VC1"),
    ("petar@mebeli.example.bg", "VC2"),
    ("petar@mebeli.example.bg", "VC2"),
    ("ana@drvo.example.hr", "VC1"),
    ("ana@drvo.example.hr", "VC2"),
    ("milan@gmail.example.com", "VC2"),
]


async def programme_desk(engine: AsyncEngine, tmp_path: Path, database_url: str) -> Desk:
    """The questions above, asked on 12 December; the first two of BG and both of HR answered."""
    desk = await make_desk(write_config(tmp_path, database_url), engine, FakeClock())
    desk.clock.moment = datetime(2026, 12, 12, 9, 0, tzinfo=UTC)
    for number, (sender, tag) in enumerate(ASKED, start=1):
        await desk.receive(make_mail(sender=sender, subject=f"[{tag}] Question {number}"))
        desk.clock.advance(minutes=10)
    routes = await desk.outbox(OutboxKind.ROUTE)
    desk.clock.advance(hours=2)
    for index in (0, 1, 4, 5):
        await desk.receive(reply_to(routes[index], f"Answer {index + 1}."))
    desk.clock.advance(hours=1)
    return desk


@pytest.mark.asyncio
async def test_the_programme_report_counts_every_session_and_country(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await programme_desk(engine, tmp_path, database_url)
    config = desk.config
    async with session_factory(engine)() as db:
        programme = await build_programme(
            db, config, load_roster(config.roster, config.countries), desk.clock.now()
        )
    total = programme.total
    assert (total.asked, total.answered, total.pending) == (7, 4, 3)
    by_session = {s.code: s for s in programme.sessions}
    assert (by_session["VC1"].asked, by_session["VC1"].answered) == (3, 3)
    assert (by_session["VC2"].asked, by_session["VC2"].answered) == (4, 1)
    assert by_session["VC3"].asked == 0
    bars = {b.tally.code: b for b in programme.countries}
    assert [(b.tally.asked, b.tally.answered) for b in bars.values()] == [
        (4, 2),
        (2, 2),
        (1, 0),
        (0, 0),
        (0, 0),
    ]
    # The widest country fills the column; the others are in proportion.
    assert (bars["BG"].answered_width, bars["BG"].pending_width) == (50, 50)
    assert (bars["HR"].answered_width, bars["HR"].pending_width) == (50, 0)
    assert (bars["RS"].answered_width, bars["RS"].pending_width) == (0, 25)
    assert [(o.session, o.question.ref) for o in programme.open] == [
        ("VC2", "Q-3"),
        ("VC2", "Q-4"),
        ("VC2", "Q-7"),
    ]  # the longest-waiting first
    rendered = render_programme(Templates(), programme)
    assert rendered.subject == (
        "Clusters Q&A: programme report, 7 questions, 4 answered, 3 pending"
    )
    assert "VC2   Managerial dynamics: 4 asked, 1 answered, 3 pending" in rendered.text
    assert "Bulgaria (BG)" in rendered.text and "########## ##########" not in rendered.text
    html = rendered.html
    # Fit for mail clients: inline styles only, no scripts, no remote anything.
    assert "<script" not in html and "<style" not in html and "<link" not in html
    assert not re.search(r"""(src|href)=["']?https?:""", html)
    assert 'width="50%" height="14" style="background-color:#2da44e' in html


@pytest.mark.asyncio
async def test_the_programme_report_goes_weekly_with_news_and_on_demand(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await programme_desk(engine, tmp_path, database_url)
    config = desk.config
    scheduler = DigestScheduler(
        config,
        session_factory(engine),
        load_roster(config.roster, config.countries),
        Templates(),
        desk.clock,
    )
    desk.clock.moment = datetime(2026, 12, 13, 6, 0, tzinfo=UTC)  # 08:00 in Sofia
    assert await scheduler.send_programme_due() is True
    assert await scheduler.send_programme_due() is False  # once a day at most
    desk.clock.moment = datetime(2026, 12, 14, 6, 0, tzinfo=UTC)
    assert await scheduler.send_programme_due() is False  # a week has not passed
    desk.clock.moment = datetime(2026, 12, 20, 6, 0, tzinfo=UTC)
    assert await scheduler.send_programme_due() is False  # a week, but no news
    desk.clock.moment = datetime(2026, 12, 20, 5, 0, tzinfo=UTC)
    await desk.receive(make_mail(sender="ayse@mobilya.example.com.tr", subject="[VC3] New?"))
    desk.clock.moment = datetime(2026, 12, 20, 6, 0, tzinfo=UTC)
    assert await scheduler.send_programme_due() is True
    reports = [
        m for m in await desk.outbox(OutboxKind.DIGEST) if "programme report" in m["Subject"]
    ]
    assert [m["Subject"] for m in reports] == [
        "Clusters Q&A: programme report, 7 questions, 4 answered, 3 pending",
        "Clusters Q&A: programme report, 8 questions, 4 answered, 4 pending",
    ]
    assert reports[0].get_body(("html",)) is not None
    assert "Still waiting for an answer" in plain(reports[1])
    # On demand, as `qa-mailer digest --programme --send` does it.
    rendered, _ = await admin.make_programme(engine, config, send=False)
    assert "8 questions, 4 answered, 4 pending" in rendered.subject
