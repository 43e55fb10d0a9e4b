"""CPU cost of processing a question, each stage next to its baseline measured in the same run.

    python bench/bench_cpu.py [--messages 2000] [--rounds 10] [--against REV]

Over the mail of bench/cpu_corpus.py (generated questions of every kind plus the mail files
under tests/data) it prints microseconds per message and messages per second for:

- bare ``mailparser.parse_from_bytes``: the floor, and parse_mail's baseline;
- ``parse_mail``;
- ``automatic_reason`` on the parsed mail;
- ``question_text`` (``parse_reply`` trimming the question);
- ``parse_reply`` on each reply corpus of tests/data/replies, with its questions.

Each stage also runs on ``qa_mailer`` as it was at ``--against REV`` (default: the commit this
work started from; ``none`` to skip), imported under another name into the same process.

These machines have shared cores whose speed changes for seconds at a time, so every stage is
timed in short slices, the old and the new code back to back, ``--rounds`` times: a figure is
the fastest slice, and the ratio is the median of the paired slices' ratios.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import cpu_corpus
import mailparser

BASE_REVISION = "2ff4ef1"
RECEIVED = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

# mail-parser logs dozens of DEBUG records per message; the bare baseline must not pay for
# them when parse_mail does not.
logging.getLogger("mailparser").setLevel(logging.ERROR)


@dataclass
class Implementation:
    """The functions under test from one copy of qa_mailer."""

    name: str
    parse: ModuleType
    rules: ModuleType
    incoming: ModuleType
    route: ModuleType
    replies: ModuleType
    address: Any = field(init=False)

    def __post_init__(self) -> None:
        addresses = importlib.import_module(f"{self.name}.addresses")
        self.address = addresses.ServiceAddress.parse(cpu_corpus.QA)

    @classmethod
    def load(cls, name: str) -> Implementation:
        def module(path: str) -> ModuleType:
            return importlib.import_module(f"{name}.{path}")

        return cls(
            name,
            module("parse"),
            module("classify.rules"),
            module("classify.incoming"),
            module("route.questions"),
            module("replies"),
        )

    def incomings(self, raws: list[bytes]) -> list[Any]:
        return [
            self.incoming.Incoming(self.parse.parse_mail(raw), "imap", None, (), RECEIVED)
            for raw in raws
        ]


def load_revision(revision: str, folder: Path) -> Implementation:
    """qa_mailer at ``revision``, importable as ``qa_mailer_base`` next to the current one."""
    archive = subprocess.run(
        ["git", "-C", str(cpu_corpus.ROOT), "archive", revision, "qa_mailer"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    package = folder / "qa_mailer_base"
    (folder / "qa_mailer").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\bqa_mailer\b", "qa_mailer_base", text), encoding="utf-8")
    sys.path.insert(0, str(folder))
    return Implementation.load("qa_mailer_base")


@dataclass
class Timing:
    """The slices of one stage on one group of messages."""

    count: int
    now: list[float] = field(default_factory=list)
    before: list[float] = field(default_factory=list)

    def micros(self, which: str = "now") -> float:
        return min(getattr(self, which)) / self.count * 1e6

    def ratio(self) -> float | None:
        if not self.before:
            return None
        return statistics.median(n / b for n, b in zip(self.now, self.before, strict=True))


def _slice(work: Callable[[], object]) -> float:
    # A full collection's cost grows with everything the benchmark holds (the corpus, the
    # parsed mail); left on, it lands on whichever stage happens to trigger it.
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        work()
        return time.perf_counter() - started
    finally:
        gc.enable()


Work = Callable[[Implementation], Callable[[], object]]


def stages(
    groups: dict[str, list[bytes]], replies: dict[str, list[Any]], impls: list[Implementation]
) -> list[tuple[str, str, int, Work]]:
    """(stage, group, count, work) for every stage and group."""
    found: list[tuple[str, str, int, Work]] = []
    parsed = {
        (impl.name, group): impl.incomings(raws) for impl in impls for group, raws in groups.items()
    }
    for group, raws in groups.items():

        def bare(_impl: Implementation, raws: list[bytes] = raws) -> Callable[[], object]:
            return lambda: [mailparser.parse_from_bytes(raw) for raw in raws]

        def parse(impl: Implementation, raws: list[bytes] = raws) -> Callable[[], object]:
            return lambda: [impl.parse.parse_mail(raw) for raw in raws]

        def rules(impl: Implementation, group: str = group) -> Callable[[], object]:
            items = parsed[impl.name, group]
            for item in items:
                # Each message is classified once: what the mail caches for later readers
                # (its header index) must be built within the timing, as in the pipeline.
                vars(item.mail).pop("_by_name", None)
            return lambda: [impl.rules.automatic_reason(i, impl.address) for i in items]

        def trim(impl: Implementation, group: str = group) -> Callable[[], object]:
            items = parsed[impl.name, group]
            return lambda: [impl.route.question_text(i) for i in items]

        found.extend(
            (stage, group, len(raws), work)
            for stage, work in (
                ("mailparser", bare),
                ("parse_mail", parse),
                ("automatic_reason", rules),
                ("question_text", trim),
            )
        )
    for corpus, items in replies.items():

        def reply(impl: Implementation, items: list[Any] = items) -> Callable[[], object]:
            return lambda: [impl.replies.parse_reply(t, h, q) for t, h, q in items]

        found.append(("parse_reply", corpus, len(items), reply))
    return found


def measure(
    now: Implementation, before: Implementation | None, messages: int, rounds: int
) -> dict[str, dict[str, Timing]]:
    """{stage: {group: Timing}}."""
    groups: dict[str, list[bytes]] = {}
    for kind, raw in cpu_corpus.questions(messages):
        groups.setdefault(kind, []).append(raw)
    groups["tests/data files"] = [raw for raw in cpu_corpus.data_mails().values() if _parses(raw)]
    replies: dict[str, list[Any]] = {}
    for name, text, html, asked in cpu_corpus.reply_inputs():
        replies.setdefault(name.split("/")[0], []).append((text, html, asked))
    impls = [now] if before is None else [now, before]
    plan = stages(groups, replies, impls)
    timings: dict[str, dict[str, Timing]] = {}
    for stage, group, count, _ in plan:
        timings.setdefault(stage, {})[group] = Timing(count)
    for round_number in range(rounds + 1):
        for stage, group, _, make in plan:
            timing = timings[stage][group]
            # mail-parser is the same library for both: once is enough.
            for impl in impls[:1] if stage == "mailparser" else impls:
                seconds = _slice(make(impl))
                # The first round only warms caches and compiled patterns.
                if round_number:
                    (timing.now if impl is now else timing.before).append(seconds)
    return timings


def _parses(raw: bytes) -> bool:
    from qa_mailer.parse import ParseError, parse_mail

    try:
        parse_mail(raw)
    except ParseError:
        return False
    return True


def _total(timings: dict[str, Timing], which: str = "now") -> float:
    count = sum(t.count for t in timings.values())
    return sum(t.micros(which) * t.count for t in timings.values()) / count


def _row(label: str, micros: float, base_label: str = "", base: float | None = None) -> str:
    line = f"  {label:30} {micros:8.1f} µs {1e6 / micros:7.0f}/s"
    if base is None:
        return line
    return f"{line}   {base_label:24} {base:8.1f} µs {1e6 / base:7.0f}/s"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"   {value:5.2f}x"


def report(timings: dict[str, dict[str, Timing]], revision: str | None) -> None:
    """Print every stage, totals first, then by kind of mail and by reply corpus."""
    old = f"@{revision}" if revision else ""
    has_before = revision is not None

    def before(stage: str) -> float | None:
        return _total(timings[stage], "before") if has_before else None

    def paired(stage: str) -> float | None:
        # Each group's ratio, weighted by the time the group took before.
        if not has_before:
            return None
        weights = {g: t.micros("before") * t.count for g, t in timings[stage].items()}
        ratios = {g: t.ratio() or 0.0 for g, t in timings[stage].items()}
        return sum(ratios[g] * weights[g] for g in weights) / sum(weights.values())

    mails = timings["mailparser"]
    print(", ".join(f"{group} {t.count}" for group, t in mails.items()), "mails")
    print("µs per message: the fastest slice; last column: now/baseline, median of paired slices")
    bare = _total(mails)
    print("\nAll mails:")
    print(_row("mailparser.parse_from_bytes", bare))
    parse = _total(timings["parse_mail"])
    parse_ratio = statistics.median(
        n / b
        for group, t in timings["parse_mail"].items()
        for n, b in zip(t.now, mails[group].now, strict=True)
    )
    print(_row("parse_mail", parse, "bare mail-parser", bare) + _ratio(parse_ratio))
    for stage in ("parse_mail", "automatic_reason", "question_text"):
        print(
            _row(stage, _total(timings[stage]), f"{stage} {old}", before(stage))
            + _ratio(paired(stage))
        )
    cpu = sum(_total(timings[s]) for s in ("parse_mail", "automatic_reason", "question_text"))
    old_cpu = None
    if has_before:
        old_cpu = sum(
            _total(timings[s], "before")
            for s in ("parse_mail", "automatic_reason", "question_text")
        )
    print(_row("parse + rules + trim", cpu, f"the same {old}", old_cpu))
    print(f"  parse + rules + trim run at {bare / cpu:.0%} of the bare mail-parser rate", end="")
    print(f" ({bare / old_cpu:.0%} {old})" if old_cpu else "")
    for stage in ("parse_mail", "question_text", "automatic_reason"):
        print(f"\n{stage} by kind of mail:")
        for group, timing in timings[stage].items():
            if stage == "parse_mail":
                bare_group = mails[group].micros()
                print(_row(group, timing.micros(), "bare mail-parser", bare_group))
            if has_before:
                base = timing.micros("before")
                print(_row(group, timing.micros(), f"{stage} {old}", base) + _ratio(timing.ratio()))
            elif stage != "parse_mail":
                print(_row(group, timing.micros()))
    print("\nparse_reply on the reply corpora, with their questions:")
    for corpus, timing in timings["parse_reply"].items():
        base = timing.micros("before") if has_before else None
        label = f"{corpus} ({timing.count})"
        print(_row(label, timing.micros(), f"parse_reply {old}", base) + _ratio(timing.ratio()))
    print(
        _row(
            "all replies",
            _total(timings["parse_reply"]),
            f"parse_reply {old}",
            before("parse_reply"),
        )
        + _ratio(paired("parse_reply"))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--against", default=BASE_REVISION, help="git revision, or 'none'")
    args = parser.parse_args()
    now = Implementation.load("qa_mailer")
    with tempfile.TemporaryDirectory(prefix="qa-bench-base-") as folder:
        revision = None if args.against == "none" else args.against
        before = load_revision(revision, Path(folder)) if revision else None
        report(measure(now, before, args.messages, args.rounds), revision)


if __name__ == "__main__":
    main()
