"""How fast reply parsing runs, next to baselines measured in the same run.

Parses every reply in tests/data/replies (the Discourse and talon corpora, our own mails and
the own_clients corpus) many times and prints replies per second for:

- read+decode: ``load_reply_file`` alone (the floor any parse pays before it starts);
- render:      read+decode plus rendering HTML bodies to text (``html_to_text``), which is
               all the work there is for a parse without rules;
- parse_reply: read+decode plus the full parse, with the questions for our own mails;
- hostile:     parse_reply over long lines built to make careless patterns backtrack
               (tests/unit/replies/test_rules.py), as MB/s.

Usage: python bench/bench_replies.py [ROUNDS]
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from qa_mailer.parse.html import html_to_text
from qa_mailer.replies import QuestionRef, parse_reply
from qa_mailer.replies.files import load_questions, load_reply_file

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "replies"
SUFFIXES = {".txt", ".html", ".eml"}


def _inputs() -> list[tuple[Path, tuple[QuestionRef, ...]]]:
    found: list[tuple[Path, tuple[QuestionRef, ...]]] = []
    for path in sorted(DATA.rglob("*")):
        if path.suffix not in SUFFIXES or "expected" in path.parts or "questions" in path.parts:
            continue
        questions: tuple[QuestionRef, ...] = ()
        if path.parent.name == "own":
            parts = path.stem.split("_")
            name = "_".join(parts[:2]) if parts[0] == "sr" else parts[0]
            questions = load_questions(DATA / "own" / "questions" / f"{name}.json")
        elif path.parent.parent.name == "own_clients":
            expected = path.parent.parent / "expected" / f"{path.stem}.json"
            name = json.loads(expected.read_text("utf-8"))["questions"]
            questions = load_questions(DATA / "own" / "questions" / f"{name}.json")
        found.append((path, questions))
    return found


def _hostile_lines() -> tuple[str, ...]:
    # The same lines the robustness test parses, so the two never drift apart.
    path = ROOT / "tests" / "unit" / "replies" / "test_rules.py"
    spec = importlib.util.spec_from_file_location("replies_test_rules", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines: tuple[str, ...] = module.HOSTILE_LINES
    return lines


def _rate(work: Callable[[], None], count: int, rounds: int) -> tuple[float, float]:
    work()  # warm caches and compiled patterns
    start = time.perf_counter()
    for _ in range(rounds):
        work()
    elapsed = time.perf_counter() - start
    return count * rounds / elapsed, elapsed


def main() -> None:
    """Run the three measurements and print one line each."""
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    inputs = _inputs()

    def read() -> None:
        for path, _ in inputs:
            load_reply_file(path)

    def render() -> None:
        for path, _ in inputs:
            _text, html = load_reply_file(path)
            if html:
                html_to_text(html)

    def parse() -> None:
        for path, questions in inputs:
            text, html = load_reply_file(path)
            parse_reply(text, html, questions)

    size = sum(path.stat().st_size for path, _ in inputs)
    print(f"{len(inputs)} replies, {size / 1024:.0f} KiB, {rounds} rounds")
    for label, work in (("read+decode", read), ("render", render), ("parse_reply", parse)):
        rate, elapsed = _rate(work, len(inputs), rounds)
        print(f"{label:12s} {rate:10.0f} replies/s   {elapsed:6.2f} s")

    hostile = [(line + "\n") * 300 for line in _hostile_lines()]

    def parse_hostile() -> None:
        for body in hostile:
            parse_reply(text=body)

    megabytes = sum(len(body) for body in hostile) / 1e6
    _, elapsed = _rate(parse_hostile, len(hostile), 1)
    rate = megabytes / elapsed
    print(f"{'hostile':12s} {rate:10.2f} MB/s        {megabytes:.1f} MB in {elapsed:.2f} s")


if __name__ == "__main__":
    main()
