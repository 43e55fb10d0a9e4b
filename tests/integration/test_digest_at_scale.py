"""Digests of large sessions: bounded lists in the body, every question in the attached list."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.classify.roster import load_roster
from qa_mailer.config import Config, ConfigError
from qa_mailer.db import Question
from qa_mailer.db.engine import session_factory
from qa_mailer.digest.build import build_digest
from qa_mailer.digest.deliver import RenderedDigest, digest_mail, produce_digest, render_digest
from qa_mailer.digest.programme import build_programme, render_programme
from qa_mailer.send.sender import Sender
from qa_mailer.templates import Templates
from tests.bulk import FilledQuestion, fill_session
from tests.helpers import ORGANISER, FakeClock, registered, write_config
from tests.integration.test_sender import OUTGOING, relay
from tests.servers.smtp_sink import SmtpSink

NOW = datetime(2026, 12, 20, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def longest_waiting(filled: list[FilledQuestion], count: int) -> list[str]:
    """The refs of the ``count`` questions without an answer that waited longest, worked out
    from what was inserted rather than from the digest: the ones asked first."""
    waiting = [f for f in filled if f.answered_at is None]
    return [f.ref for f in sorted(waiting, key=lambda f: f.asked_at)[:count]]


def section(text: str, heading: str) -> str:
    """The part of the digest's text from ``heading`` to the next heading or the signature."""
    start = text.index(heading)
    ends = [text.find(mark, start + 1) for mark in ("\n=== ", "\n-- \n")]
    return text[start : min(e for e in ends if e != -1)]


def listed_refs(part: str) -> list[str]:
    return re.findall(r"^(?:\+ )?(Q-\d+) \[", part, flags=re.MULTILINE)


def read_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


async def digest_of(
    engine: AsyncEngine, config: Config, number: int, *, send: bool
) -> RenderedDigest:
    roster = load_roster(config.roster, config.countries)
    async with session_factory(engine).begin() as tx:
        return await produce_digest(
            tx, config, roster, Templates.of(config), FakeClock(NOW), number, send=send
        )


@pytest.mark.asyncio
async def test_a_digest_of_2000_questions_stays_within_its_budget_and_attaches_them_all(
    engine: AsyncEngine, tmp_path: Path, database_url: str, smtp_sink: SmtpSink
) -> None:
    config = write_config(tmp_path, database_url)
    filled = await fill_session(engine, 1, 2000, NOW)
    await digest_of(engine, config, 1, send=True)
    clock = FakeClock(NOW)
    workers = await registered(session_factory(engine), clock, ("send",))
    sender = Sender(session_factory(engine), relay(smtp_sink.port), OUTGOING, clock, workers)
    assert await sender.deliver_due() == 1

    [received] = smtp_sink.to(ORGANISER)
    assert len(received.raw) <= config.digest.size_budget_kb * 1000 == 300_000
    mail = received.message
    pending = sum(1 for f in filled if f.answered_at is None)
    assert str(mail["Subject"]) == (
        f"[VC1] Q&A digest: 2000 questions, {2000 - pending} answered, {pending} pending"
    )
    # Every question is in the attached list, the waiting ones first, longest-waiting first.
    [attachment] = mail.iter_attachments()
    assert attachment.get_filename() == "VC1-questions.csv.zip"
    data = attachment.get_content()
    assert isinstance(data, bytes)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["VC1-questions.csv"]
        rows = read_rows(archive.read("VC1-questions.csv"))
    assert rows[0][0] == "Ref" and len(rows) == 2001
    assert sorted(row[0] for row in rows[1:]) == sorted(f.ref for f in filled)
    assert [row[0] for row in rows[1 : pending + 1]] == longest_waiting(filled, pending)
    by_ref = {f.ref: f for f in filled}
    for row in rows[1:]:
        assert row[10] == by_ref[row[0]].subject
        assert by_ref[row[0]].body.startswith(row[11].removesuffix("..."))

    # The body: the table by country, then the 20 longest-waiting questions, then answers.
    body = mail.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    text = body.get_content()
    assert f"Total: 2000 questions, {2000 - pending} answered, {pending} pending." in text
    assert "== Bulgaria (BG): " in text and "== Country not assigned (--): " in text
    assert "The list of all 2000 questions is attached as VC1-questions.csv.zip" in text
    waiting = section(text, "=== Waiting for an answer")
    assert f": {pending} (the first 20 here)" in waiting
    assert listed_refs(waiting) == longest_waiting(filled, 20)
    assert f"... and {pending - 20} more, in VC1-questions.csv.zip." in waiting
    assert text.index("=== Waiting for an answer") < text.index("=== Answered")
    # The first lines of a question, not its whole text.
    first = by_ref[longest_waiting(filled, 1)[0]]
    assert first.body.split("\n")[0] in waiting and first.body not in waiting
    assert len(listed_refs(text)) == 20 + 20  # waiting, and the first answered ones

    html = mail.get_body(preferencelist=("html",))
    assert isinstance(html, EmailMessage)
    page = html.get_content()
    assert "<style" not in page and "<script" not in page
    assert "<td>Bulgaria (BG)</td>" in page
    refs_in_page = re.findall(r">(?:\+ )?(Q-\d+): ", page)
    assert refs_in_page[:20] == longest_waiting(filled, 20)


@pytest.mark.asyncio
async def test_a_later_digest_says_what_changed_and_only_counts_the_older_answers(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url)
    filled = await fill_session(engine, 1, 2000, NOW)
    since = NOW - timedelta(days=1)
    roster = load_roster(config.roster, config.countries)
    async with session_factory(engine)() as tx:
        digest = await build_digest(tx, config, roster, 1, NOW, since)
    rendered = render_digest(Templates.of(config), digest)
    asked = sum(1 for f in filled if f.asked_at > since)
    answered = sum(1 for f in filled if f.answered_at is not None and f.answered_at > since)
    before = sum(1 for f in filled if f.answered_at is not None) - answered
    text = rendered.text
    assert re.search(
        rf"Since the digest of [-0-9: ]+: {asked} new questions, {answered} answered\.", text
    )
    assert f"=== Answered since the last digest: {answered} (the first 20 here)" in text
    assert f"=== Answered before the last digest: {before}, in VC1-questions.csv.zip" in text
    assert len(listed_refs(text)) == 20 + 20
    # The waiting questions asked since the digest before are marked.
    waiting = section(text, "=== Waiting for an answer")
    marked = re.findall(r"^\+ (Q-\d+) \[", waiting, flags=re.MULTILINE)
    new = {f.ref for f in filled if f.asked_at > since}
    assert set(marked) == new & set(listed_refs(waiting))


@pytest.mark.asyncio
async def test_a_list_too_large_for_the_budget_is_left_out_and_the_export_named(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url, digest={"size_budget_kb": 50})
    await fill_session(engine, 1, 2000, NOW)
    rendered = await digest_of(engine, config, 1, send=False)
    mail = digest_mail(config, FakeClock(NOW), rendered)
    assert len(mail.raw) <= 50_000
    assert rendered.question_list is None
    left_out = rendered.digest.list_left_out
    assert left_out is not None and left_out.size > 50_000
    assert "The list of all 2000 questions is not attached: even zipped" in rendered.text
    assert "`qa-mailer export --format csv --session 1 --output VC1-questions.csv`" in rendered.text
    assert b"Content-Disposition: attachment" not in mail.raw


@pytest.mark.asyncio
async def test_lists_too_long_for_the_budget_are_shortened_to_keep_the_list_attached(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    # 300 questions would all fit lists of 1,000, but not in 100 kB.
    config = write_config(
        tmp_path, database_url, digest={"list_questions": 1000, "size_budget_kb": 100}
    )
    filled = await fill_session(engine, 1, 300, NOW)
    rendered = await digest_of(engine, config, 1, send=False)
    assert len(digest_mail(config, FakeClock(NOW), rendered).raw) <= 100_000
    shown = rendered.digest
    assert shown.question_list is not None and shown.question_list.questions == 300
    assert 10 <= shown.limit < 300 and not shown.complete
    waiting = section(rendered.text, "=== Waiting for an answer")
    assert listed_refs(waiting) == longest_waiting(filled, shown.limit)


@pytest.mark.asyncio
async def test_a_small_session_has_no_attachment_and_a_middling_one_a_plain_csv(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url, digest={"list_questions": 20})
    filled = await fill_session(engine, 1, 45, NOW, seed=1)
    await fill_session(engine, 2, 3, NOW, seed=2)
    # A participant's words that a spreadsheet would run as formulas.
    hostile = int(filled[0].ref.removeprefix("Q-"))
    async with session_factory(engine).begin() as tx:
        await tx.execute(
            update(Question)
            .where(Question.id == hostile)
            .values(subject='=HYPERLINK("http://evil.example/","Open")', body="-1+1\nmore")
        )

    small = await digest_of(engine, config, 2, send=False)
    assert small.question_list is None and small.digest.complete
    assert b"multipart/mixed" not in digest_mail(config, FakeClock(NOW), small).raw
    assert "is attached" not in small.text and len(listed_refs(small.text)) == 3

    middling = await digest_of(engine, config, 1, send=False)
    attached = middling.question_list
    assert attached is not None and not attached.zipped
    assert attached.filename == "VC1-questions.csv"
    rows = read_rows(attached.attachment.data)
    assert len(rows) == 46
    [row] = [row for row in rows if row[0] == filled[0].ref]
    assert row[10:] == ['\'=HYPERLINK("http://evil.example/","Open")', "'-1+1"]
    raw = digest_mail(config, FakeClock(NOW), middling).raw
    assert b"multipart/mixed" in raw and b'filename="VC1-questions.csv"' in raw


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("list_questions", 0, "digest.list_questions: expected an integer between 1 and 1000"),
        ("list_questions", "all", "digest.list_questions: expected an integer"),
        ("size_budget_kb", 10, "digest.size_budget_kb: expected an integer between 50 and 50000"),
    ],
)
def test_digest_bounds_out_of_range_are_named(
    tmp_path: Path, key: str, value: object, expected: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        write_config(tmp_path, "sqlite+aiosqlite:///unused.db", digest={key: value})


@pytest.mark.asyncio
async def test_the_programme_report_lists_a_bounded_number_of_open_questions(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url)
    filled = await fill_session(engine, 1, 2000, NOW)
    pending = sum(1 for f in filled if f.answered_at is None)
    roster = load_roster(config.roster, config.countries)
    async with session_factory(engine)() as tx:
        programme = await build_programme(tx, config, roster, NOW)
    rendered = render_programme(Templates.of(config), programme)
    assert len(programme.open) == pending
    assert (
        f"Still waiting for an answer, the longest-waiting first: {pending} (the first 20 here)"
        in rendered.text
    )
    shown = re.findall(r"^VC1 (Q-\d+) ", rendered.text, flags=re.MULTILINE)
    assert shown == longest_waiting(filled, 20)
    assert f"... and {pending - 20} more" in rendered.text
    assert len(rendered.text) < 20_000 and len(rendered.html) < 60_000


@pytest.mark.asyncio
async def test_the_digest_command_prints_a_readable_digest_of_a_large_session(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url)
    # The command reads the system's clock: the questions are asked in the days before it.
    filled = await fill_session(engine, 1, 2000, datetime.now(UTC))
    attached = tmp_path / "list.zip"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qa_mailer",
        "--config",
        str(config.path),
        "digest",
        "--session",
        "1",
        "--list",
        str(attached),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    # Two lists of 20 questions of a few lines each, the table and the notes.
    assert len(text.splitlines()) < 800 and len(text) < 80_000
    assert "The list of all 2000 questions is attached as VC1-questions.csv.zip" in text
    assert listed_refs(section(text, "=== Waiting"))[:5] == longest_waiting(filled, 5)
    # The list itself, written where the organiser asked.
    with zipfile.ZipFile(attached) as archive:
        assert len(read_rows(archive.read("VC1-questions.csv"))) == 2001
    assert f"{attached}: the list of 2000 questions" in err.decode()
