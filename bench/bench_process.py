"""Processing speed next to the bare mail-parser rate of the same messages, in the same run.

    .venv/bin/python bench/bench_process.py [--messages 2000] [--stored 0,1000,10000,100000]
                                            [--processes 1,2,4] [--repeat 3] [--open 0]

1. mail-parser alone on N questions (the baseline), then the processing stage (claim, parse,
   classify, thread, acknowledgement and expert copy into the outbox, mark done) on SQLite and
   on PostgreSQL, in this process, each as a rate and as a share of the baseline: parsing in
   the service's own process, and with the parsing helpers the shipped config starts here.
2. The same N questions processed with 0, 1k, 10k and 100k messages already stored (with their
   threads, questions, dispatches and outbox mail; their questions answered, but for the
   latest --open of them): the cost per message must stay flat. Each
   size is one database that every run of it adds to (so from the second run on, the questions
   of the runs before are open, and a new question is compared with them), the same for every
   size: the largest is compared with 0 stored, not with the fresh databases of part 1. The
   sizes take turns, round after round, so that each meets the same drift of the machine.
3. PostgreSQL throughput with 1, 2 and 4 `qa-mailer serve --roles process` processes.

The machines this runs on change speed by a factor of two from one minute to the next, so
every run is paired with the baseline measured just before and just after it (on 500 of the
same questions), and the share is that pair's. Each figure is the median of --repeat runs.
Beside each rate is the CPU time per message (user and system, of the service's process,
its database thread included, of its parsing helpers, and of the PostgreSQL server when it
runs on this machine: all its processes), which other load on the machine
changes far less than the rate: mail-parser's own CPU time per message is the baseline of
those, and 50% of the mail-parser rate on one core means twice its CPU time per message.
PostgreSQL must answer at 127.0.0.1:5432 (or $QA_MAILER_TEST_POSTGRES); the benchmark makes
and drops its own databases there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import mailparser
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa_mailer import eventloop
from qa_mailer.app import Service, collector_tuned
from qa_mailer.clock import SystemClock
from qa_mailer.config import Config, load_config
from qa_mailer.db import (
    Dispatch,
    InboundMessage,
    MessageState,
    OutboxMail,
    Question,
    RawMessage,
    Thread,
    Worker,
    dispatch_questions,
    migrate,
)
from qa_mailer.db.engine import create_engine, session_factory
from qa_mailer.ingest.store import Envelope, MessageStore
from tests.helpers import ROOT, make_mail, write_config
from tests.servers.fleet import Fleet

POSTGRES = os.environ.get("QA_MAILER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

# One question per country, in the charset its mail clients use, about 3 KB each.
COUNTRIES = [
    ("bg", "utf-8", "Как клъстерът помага на малките производители на мебели при износа? "),
    ("hr", "iso-8859-2", "Kako klaster pomaže malim proizvođačima namještaja u izvozu? "),
    ("rs", "utf-8", "Kako klaster pomaže malim proizvođačima nameštaja u izvozu? "),
    ("com.tr", "iso-8859-9", "Kümelenme ihracatta küçük mobilya üreticilerine nasıl yardım eder? "),
    ("ru", "windows-1251", "Как кластер помогает малым производителям мебели в экспорте? "),
]


def questions(count: int, first: int = 0) -> list[bytes]:
    """``count`` questions from as many participants, over the five sessions."""
    mails = []
    for n in range(first, first + count):
        tld, charset, sentence = COUNTRIES[n % len(COUNTRIES)]
        mails.append(
            make_mail(
                sender=f"participant{n}@firm{n % 97}.example.{tld}",
                subject=f"[VC{n % 5 + 1}] {sentence[:40]} ({n})",
                body=f"{n}: " + sentence * (3000 // len(sentence)),
                charset=charset,
                message_id=f"<q{n}.{uuid.uuid4().hex[:8]}@firm.example.{tld}>",
            )
        )
    return mails


@dataclass(frozen=True)
class Figures:
    """One timed run: messages per second, and CPU milliseconds per message."""

    rate: float
    cpu_ms: float  # of the process doing the work (for serve: all its processes)
    helper_cpu_ms: float = 0.0  # of its parsing helpers, if any
    server_cpu_ms: float = 0.0  # of the PostgreSQL server on this machine, when it is the database


def bare_parse(mails: list[bytes]) -> Figures:
    started, cpu = time.perf_counter(), time.process_time()
    for raw in mails:
        mailparser.parse_from_bytes(raw)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Figures(len(mails) / seconds, cpu * 1000 / len(mails))


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds so far of these processes and their children (Linux)."""
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        # The fields after the command name (which may hold spaces) are space-separated.
        fields = stat.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
        total += cpu_seconds([int(child) for child in children])
    return total


def postgres_cpu_seconds() -> float:
    """CPU seconds so far of the PostgreSQL server running here: its postmaster and every
    process under it (backends, WAL writer, autovacuum); 0 when none can be read."""
    names: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.partition(" (")[2].rpartition(")")
        names[int(entry.name)] = (name, int(rest.split()[1]))
    postmasters = [
        pid
        for pid, (name, parent) in names.items()
        if name == "postgres" and names.get(parent, ("", 0))[0] != "postgres"
    ]
    return cpu_seconds(postmasters)


class Databases:
    """Fresh, migrated databases: SQLite files in a temp folder, PostgreSQL ones dropped at exit."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.created: list[str] = []

    async def new(self, kind: str) -> str:
        name = f"qa_bench_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            url = f"sqlite+aiosqlite:///{self.folder / name}.db"
        else:
            await _postgres(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            url = f"{POSTGRES.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
        engine = create_engine(url)
        await migrate.upgrade(engine)
        await engine.dispose()
        return url

    async def drop_all(self) -> None:
        for name in self.created:
            await _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _postgres(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES, timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def store(url: str, mails: list[bytes]) -> None:
    engine = create_engine(url)
    saved = MessageStore(session_factory(engine), SystemClock(), lambda: None)
    for start in range(0, len(mails), 500):
        await saved.store_many(
            [(raw, Envelope("smtp"), None) for raw in mails[start : start + 500]]
        )
    await engine.dispose()


async def process_in_process(config: Config, url: str, mails: list[bytes]) -> Figures:
    """Store the mails, then time the processing stage of one Service over all of them."""
    await store(url, mails)
    engine = create_engine(url)
    service = Service(config, engine, clock=SystemClock())
    await service.workers.register(["bench"])
    await service.pipeline.start()
    helpers = service.pipeline.helper_pids()
    server = url.startswith("postgresql")
    # The garbage collector as `serve` sets it once it has started.
    with collector_tuned():
        started, cpu, helper_cpu = time.perf_counter(), _own_cpu(), cpu_seconds(helpers)
        server_cpu = postgres_cpu_seconds() if server else 0.0
        outcomes = await service.pipeline.process_pending()
        seconds, cpu = time.perf_counter() - started, _own_cpu() - cpu
    helper_cpu = cpu_seconds(helpers) - helper_cpu
    server_cpu = postgres_cpu_seconds() - server_cpu if server else 0.0
    service.pipeline.close()
    await service.workers.stop()
    await engine.dispose()
    assert len(outcomes) == len(mails), f"{len(outcomes)} of {len(mails)} processed"
    return Figures(
        len(mails) / seconds,
        cpu * 1000 / len(mails),
        helper_cpu * 1000 / len(mails),
        server_cpu * 1000 / len(mails),
    )


def _own_cpu() -> float:
    # Every thread of this process: SQLite works in aiosqlite's thread.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def fill_history(url: str, count: int, still_open: int = 0) -> None:
    """``count`` messages already processed, as a programme's database holds them: questions
    answered, but for the latest ``still_open``, which wait for the expert."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC) - timedelta(days=30)
    raw = questions(1)[0]
    ack = b"From: qa@clusters.example.org\r\nSubject: Re: x\r\n\r\n" + b"Thank you.\r\n" * 80
    chunk = 5000
    for start in range(0, count, chunk):
        ids = range(start + 1, min(count, start + chunk) + 1)
        async with sessions.begin() as tx:
            await tx.execute(
                insert(InboundMessage.__table__),
                [
                    {
                        "id": n,
                        "received_at": now,
                        "source": "smtp",
                        "rfc_message_id": f"<history{n}@firm.example.bg>",
                        "fingerprint": f"history{n}",
                        "size": len(raw),
                        "state": MessageState.PROCESSED,
                        "kind": "question",
                        "sender": f"p{n % 20000}@firm.example.bg",
                        "subject": f"Question {n}",
                        "attempts": 1,
                    }
                    for n in ids
                ],
            )
            await tx.execute(
                insert(RawMessage.__table__), [{"message_id": n, "raw": raw} for n in ids]
            )
            await tx.execute(
                insert(Thread.__table__),
                [
                    {
                        "id": n,
                        "session_no": n % 5 + 1,
                        "session_source": "subject-tag",
                        "country": "BG",
                        "country_source": "sender-domain",
                        "participant_email": f"p{n % 20000}@firm.example.bg",
                        "participant_name": "P",
                        "subject_key": f"question {n}",
                        "created_at": now,
                    }
                    for n in ids
                ],
            )
            await tx.execute(
                insert(Question.__table__),
                [
                    {
                        "id": n,
                        "thread_id": n,
                        "message_id": n,
                        "session_no": n % 5 + 1,
                        "subject": f"Question {n}",
                        "body": "How?",
                        "state": "with_expert" if n > count - still_open else "answered",
                        "asked_at": now,
                        "acknowledged_at": now,
                    }
                    for n in ids
                ],
            )
            await tx.execute(
                insert(Dispatch.__table__),
                [
                    {
                        "id": n,
                        "token": uuid.uuid4().hex[:20],
                        "route_key": uuid.uuid4().hex[:20],
                        "session_no": n % 5 + 1,
                        "experts": "expert@clusters.example.org",
                        "created_at": now,
                    }
                    for n in ids
                ],
            )
            await tx.execute(
                insert(dispatch_questions), [{"dispatch_id": n, "question_id": n} for n in ids]
            )
            await tx.execute(
                insert(OutboxMail.__table__),
                [
                    {
                        "key": f"{kind}:{n}",
                        "rfc_message_id": f"<qa.{kind}.h{n}@clusters.example.org>",
                        "kind": kind,
                        "question_id": n,
                        "dispatch_id": n if kind == "route" else None,
                        "envelope_from": "qa@clusters.example.org",
                        "recipients": ["p@firm.example.bg"],
                        "raw": ack,
                        "state": "sent",
                        "attempts": 1,
                        "next_attempt_at": now,
                        "created_at": now,
                        "sent_at": now,
                    }
                    for n in ids
                    for kind in ("ack", "route")
                ],
            )
    if engine.dialect.name == "postgresql":
        # Ids were given explicitly: move the sequences past them, and refresh statistics.
        async with engine.begin() as connection:
            for table in ("messages", "threads", "questions", "dispatches", "outbox"):
                await connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            await connection.exec_driver_sql("ANALYZE")
    await engine.dispose()


async def serve_throughput(
    folder: Path, databases: Databases, mails: list[bytes], processes: int
) -> Figures:
    """Questions per second through ``processes`` `serve --roles process` on one PostgreSQL."""
    url = await databases.new("postgresql")
    config = write_config(folder / f"fleet{processes}", url, listener={"enabled": False})
    fleet = Fleet(config.path, folder / f"fleet{processes}" / "logs", roles="process")
    engine = create_engine(url)
    sessions = session_factory(engine)
    await fleet.start(processes)
    try:
        await _until(lambda: _count(sessions, Worker, Worker.stopped_at.is_(None)), processes)
        saved = MessageStore(sessions, SystemClock(), lambda: None)
        pids = [process.pid for process in fleet.running]
        cpu = cpu_seconds(pids)
        # One transaction: every process is woken by the same commit, and the clock starts.
        await saved.store_many([(raw, Envelope("smtp"), None) for raw in mails])
        started = time.perf_counter()
        await _until(
            lambda: _count(
                sessions, InboundMessage, InboundMessage.state == MessageState.PROCESSED
            ),
            len(mails),
        )
        seconds = time.perf_counter() - started
        # Their heartbeats and idle polls are in it too: a little more than the work.
        cpu = cpu_seconds(pids) - cpu
    finally:
        codes = await fleet.stop()
        await engine.dispose()
    assert codes == [0] * processes, fleet.log_text()
    return Figures(len(mails) / seconds, cpu * 1000 / len(mails))


async def _count(sessions: object, model: type, *where: object) -> int:
    async with sessions() as tx:  # type: ignore[operator]
        return int(await tx.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _until(count: Callable[[], Awaitable[int]], target: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while await count() < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {target} after {timeout} s")
        await asyncio.sleep(0.02)


Run = Callable[[], Awaitable[Figures]]


@dataclass(frozen=True)
class Paired:
    """Medians over the runs of a figure: the run's, its baseline's, and the rate's share."""

    run: Figures
    baseline: Figures
    share: float


Measured = tuple[Figures, Figures]  # a run's figures, and its baseline's


async def measured(mails: list[bytes], run: Run) -> Measured:
    """One run, with the mail-parser baseline measured just before and after it."""
    before = bare_parse(mails[:500])
    figures = await run()
    after = bare_parse(mails[:500])
    return figures, Figures((before.rate + after.rate) / 2, (before.cpu_ms + after.cpu_ms) / 2)


def summary(results: list[Measured]) -> Paired:
    """Medians of the runs, of their baselines, and of each run's share of its baseline."""

    def median(figures: list[Figures]) -> Figures:
        return Figures(
            statistics.median(f.rate for f in figures),
            statistics.median(f.cpu_ms for f in figures),
            statistics.median(f.helper_cpu_ms for f in figures),
            statistics.median(f.server_cpu_ms for f in figures),
        )

    return Paired(
        median([f for f, _ in results]),
        median([b for _, b in results]),
        statistics.median(f.rate / b.rate for f, b in results),
    )


async def paired(mails: list[bytes], runs: list[Run]) -> Paired:
    """Medians of the runs, each with its own baseline measured just before and after it."""
    return summary([await measured(mails, run) for run in runs])


def line(label: str, figures: Paired) -> None:
    run, baseline = figures.run, figures.baseline
    helpers = f" + {run.helper_cpu_ms:.2f} in helpers" if run.helper_cpu_ms else ""
    if run.server_cpu_ms:
        helpers += f" + {run.server_cpu_ms:.2f} in PostgreSQL"
    print(
        f"  {label:52} {run.rate:5.0f} msg/s {figures.share:4.0%} of mail-parser "
        f"({baseline.rate:.0f}/s); CPU {run.cpu_ms:.2f} ms/msg{helpers}, "
        f"mail-parser {baseline.cpu_ms:.2f}",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--stored", default="0,1000,10000,100000")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--open",
        type=int,
        default=0,
        help="of the messages already stored, how many are questions still open (at most all)",
    )
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="which databases the first two parts use"
    )
    args = parser.parse_args()
    kinds = [kind for kind in args.databases.split(",") if kind]
    folder = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    databases = Databases(folder)
    count, repeat = args.messages, args.repeat
    mails = questions(count)
    helpers = load_config(ROOT / "config.toml").workers.parse_processes
    print(
        f"{count} questions of ~{sum(map(len, mails)) // count} bytes in 5 charsets, "
        f"{os.cpu_count()} cores; medians of {repeat} runs"
    )
    try:
        bare = bare_parse(mails)
        print(
            f"  {'mail-parser alone (mailparser.parse_from_bytes)':52} {bare.rate:5.0f} msg/s"
            f"{'':32}CPU {bare.cpu_ms:.2f} ms/msg"
        )
        print("Processing stage, one process, empty database:")

        def fresh(kind: str, parse_processes: int, first: int = 0) -> Run:
            async def run() -> Figures:
                url = await databases.new(kind)
                config = write_config(
                    folder / uuid.uuid4().hex, url, workers={"parse_processes": parse_processes}
                )
                return await process_in_process(config, url, questions(count, first))

            return run

        for kind in kinds:
            for parse_processes in sorted({0, helpers}):
                label = f"{kind}, " + (
                    "parsing in the process"
                    if not parse_processes
                    else f"{parse_processes} parsing helper(s)"
                )
                line(
                    label,
                    await paired(mails, [fresh(kind, parse_processes) for _ in range(repeat)]),
                )
        sizes = [int(s) for s in args.stored.split(",") if s]
        if sizes:
            print(
                f"Processing {count} new questions with messages already stored ({helpers} helper(s))"
                + (f", the latest {args.open} of them questions still open" if args.open else "")
                + ":"
            )
        for kind in kinds:
            # Every size is filled first, then the runs take turns (round r runs every size,
            # in the opposite order to round r - 1): the machine's speed drifts by more than
            # the growth being measured, and taking turns gives each size the same drift.
            urls: dict[int, str] = {}
            filled: dict[int, float] = {}
            for size in sizes:
                urls[size] = await databases.new(kind)
                started = time.perf_counter()
                await fill_history(urls[size], size, min(args.open, size))
                filled[size] = time.perf_counter() - started

            def more(run_number: int, size: int, url: str) -> Run:
                async def run() -> Figures:
                    config = write_config(
                        folder / uuid.uuid4().hex, url, workers={"parse_processes": helpers}
                    )
                    fresh_mails = questions(count, first=size + run_number * count)
                    return await process_in_process(config, url, fresh_mails)

                return run

            results: dict[int, list[Measured]] = {size: [] for size in sizes}
            for round_ in range(repeat):
                for size in sizes if round_ % 2 == 0 else sizes[::-1]:
                    results[size].append(await measured(mails, more(round_, size, urls[size])))
            for size in sizes:
                line(
                    f"{kind}: {size:>7} stored (filled in {filled[size]:.0f} s)",
                    summary(results[size]),
                )
            if len(set(sizes)) > 1:
                smallest, largest = min(sizes), max(sizes)
                low, high = summary(results[smallest]), summary(results[largest])
                turns = [
                    big.rate / small.rate
                    for (big, _), (small, _) in zip(
                        results[largest], results[smallest], strict=True
                    )
                ]
                total = (high.run.cpu_ms + high.run.helper_cpu_ms) / (
                    low.run.cpu_ms + low.run.helper_cpu_ms
                )
                print(
                    f"  {kind}: {largest} stored against {smallest}: rate "
                    f"{high.run.rate / low.run.rate - 1:+.0%} (median of the rounds' ratios "
                    f"{statistics.median(turns) - 1:+.0%}), share of mail-parser "
                    f"{high.share / low.share - 1:+.0%}, CPU per message {total - 1:+.0%}"
                )
        counts = [int(p) for p in args.processes.split(",") if p]
        if counts:
            print(
                f"PostgreSQL, `qa-mailer serve --roles process` processes (no helpers), "
                f"{count * 2} questions:"
            )
        for processes in counts:

            def fleet(processes: int = processes) -> Run:
                async def run() -> Figures:
                    return await serve_throughput(
                        folder, databases, questions(count * 2), processes
                    )

                return run

            line(f"{processes} process(es)", await paired(mails, [fleet() for _ in range(repeat)]))
    finally:
        await databases.drop_all()


if __name__ == "__main__":
    # The event loop `serve` runs on (uvloop where installed), so the figures are its own.
    eventloop.run(main())
