"""The digest of a session with 2,000 questions: its size, part by part, and how long it takes.

    .venv/bin/python bench/bench_digest.py [--questions 2000] [--repeat 3]

A session of N questions (60% answered, a quarter of them in Cyrillic, 300-1,500 characters
each, answers 200-1,200) is written straight into a SQLite database (tests/bulk.py). Then:
- the baseline, measured in the same run: the raw text of the questions and their answers,
  and the digest as it was before the digests were bounded (every question's and answer's
  full text, in the text part and again in the HTML part), rendered from the templates of
  commit BEFORE (read with `git show`; skipped when git or that commit is not at hand);
- the digest as it is now: the time to build it (the database query and grouping) and to
  render it (both parts, the attached list as CSV and zipped, fitting them to the budget),
  the median of --repeat runs; and the size of the mail as queued, in total and per part
  (as encoded on the wire), with how many questions each list of the body shows.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa_mailer.classify.roster import load_roster
from qa_mailer.clock import SystemClock
from qa_mailer.db import migrate
from qa_mailer.db.engine import create_engine, session_factory
from qa_mailer.digest.build import Digest, build_digest
from qa_mailer.digest.deliver import RenderedDigest, digest_mail, render_digest
from qa_mailer.send.compose import build_mail, encode_body
from qa_mailer.templates import Templates
from tests.bulk import fill_session
from tests.helpers import ROOT, write_config

# The last commit whose digest held every question in full.
BEFORE = "1ae9f56"


def old_templates(folder: Path) -> Templates | None:
    """The digest templates of commit BEFORE, as an override folder; None without them."""
    for name in ("digest.txt", "digest.html"):
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BEFORE}:templates/{name}"],
            capture_output=True,
        )
        if shown.returncode != 0:
            return None
        (folder / name).write_bytes(shown.stdout)
    return Templates(folder)


def kb(size: int) -> str:
    return f"{size / 1000:,.1f} kB"


def timed(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-digest-"))
    url = f"sqlite+aiosqlite:///{folder / 'qa-mailer.db'}"
    config = write_config(folder, url)
    engine = create_engine(url)
    await migrate.upgrade(engine)
    now = datetime.now(UTC)
    filled = await fill_session(engine, 1, args.questions, now)
    roster = load_roster(config.roster, config.countries)
    templates = Templates.of(config)
    clock = SystemClock()

    build_times, render_times = [], []
    digest: Digest | None = None
    rendered: RenderedDigest | None = None
    for _ in range(args.repeat):
        started = time.perf_counter()
        async with session_factory(engine)() as tx:
            digest = await build_digest(tx, config, roster, 1, now)
        build_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        rendered = render_digest(templates, digest, config.organiser_language)
        render_times.append(time.perf_counter() - started)
    await engine.dispose()
    assert digest is not None and rendered is not None

    answers = sum(len(a) for q in digest.questions for a in q.answers)
    raw_text = sum(len(f.body.encode()) for f in filled) + answers
    print(f"A session of {len(filled)} questions, {digest.answered} answered; figures of one run.")
    print(f"Baseline: the raw text of the questions and answers: {kb(raw_text)}")
    with tempfile.TemporaryDirectory() as old_folder:
        old = old_templates(Path(old_folder))
        if old is None:
            print(f"  (the full-text digest of {BEFORE} cannot be rendered: no git or commit)")
        else:
            started = time.perf_counter()
            text = old.render_mail("digest.txt", digest=digest)
            html = old.render("digest.html", digest=digest)
            old_render = time.perf_counter() - started
            mail = build_mail(
                sender=("Q&A", config.address.address),
                to=list(config.organisers),
                subject=text.subject or "digest",
                text=text.text,
                html=html,
                message_id="<bench@example.org>",
                date=now,
            )
            print(
                f"  the full-text digest of {BEFORE}: {kb(len(mail.raw))} as a mail "
                f"(text {kb(len(encode_body(text.text)[1]))}, "
                f"HTML {kb(len(encode_body(html)[1]))}); rendered in {old_render * 1000:.0f} ms"
            )

    mail = digest_mail(config, clock, rendered)
    shown = rendered.digest
    listed = shown.question_list
    print(f"The digest now (budget {shown.budget_kb} kB, [digest] list_questions {digest.limit}):")
    print(f"  built in {timed(build_times)}, rendered in {timed(render_times)} (median)")
    print(f"  the mail as queued: {kb(len(mail.raw))}")
    print(f"    text part   {kb(len(encode_body(rendered.text)[1]))}")
    print(f"    HTML part   {kb(len(encode_body(rendered.html)[1]))}")
    if listed is not None:
        encoded = -(-listed.size // 3) * 4
        print(
            f"    attachment  {kb(encoded)} base64 ({listed.filename}: {kb(listed.size)}, "
            f"{listed.questions} questions)"
        )
    elif shown.list_left_out is not None:
        print(f"    no attachment: the list ({kb(shown.list_left_out.size)} zipped) would not fit")
    print(
        f"  each list of the body shows {shown.limit}: waiting {len(shown.waiting)}, "
        f"answered {len(shown.answered_since)}"
    )
    print(f"  `digest --session 1` prints {len(rendered.text.splitlines())} lines")


if __name__ == "__main__":
    asyncio.run(main())
