"""Outbox drain rate next to a plain aiosmtplib loop over one connection, in the same run.

    .venv/bin/python bench/bench_send.py [--mails 5000] [--postgres] [--connections 3]
                                         [--repeat 3] [--backlog 460] [--outage 5]

1. A local aiosmtpd relay runs in its own process and takes every mail (and discards it).
2. Baseline: aiosmtplib sends the same mails over one connection, one after the other, just
   before and just after the drain (the mean of the two).
3. The sender: N mails queued in the outbox (SQLite, or PostgreSQL with --postgres) are
   drained by `Sender.deliver_due` with the real SmtpTransport to the same relay: claims,
   sending over `smtp.connections` connections, outcomes written per batch.
   Each run prints both rates and their ratio; the figure is the median of --repeat runs.
4. Backlog recovery: with the relay down, --backlog mails are queued and the service's
   sender loop (`Sender.run`) tries them and backs off; after --outage seconds the relay
   starts; the figure is the seconds from then until every mail is sent.

The machines this runs on are shared and change speed from one minute to the next: the ratio
of the two rates in one run is what to compare, not the rates themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa_mailer.clock import SystemClock
from qa_mailer.config import OutgoingConfig, SmtpRelayConfig
from qa_mailer.db import OutboxKind, OutboxMail, OutboxState, migrate
from qa_mailer.db.engine import create_engine, session_factory
from qa_mailer.send.compose import build_mail, new_message_id
from qa_mailer.send.outbox import outbox_row
from qa_mailer.send.sender import Sender
from qa_mailer.send.transport import SmtpTransport
from tests.helpers import QA, local_relay, registered, wait_until
from tests.servers.ports import free_port

POSTGRES = os.environ.get("QA_MAILER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
ANSWER = (
    "Dobar dan,\n\nklaster se obično osniva kao udruga poduzeća iz iste regije i grane; "
    "prvi korak je zajednički projekt koji svima donosi korist.\n\n"
) * 6


# The relay, run as `bench_send.py --relay PORT` in a process of its own.
class _Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


async def _relay(port: int) -> None:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    sink = _Sink()
    server = await loop.create_server(lambda: SMTP(sink, loop=loop), "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


class Relay:
    """The relay process: started, stopped, started again on the same port."""

    def __init__(self, port: int):
        self.port = port
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--relay",
            str(self.port),
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        assert line.strip() == b"ready", line

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None


def mails(count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    rows = []
    for n in range(count):
        mail = build_mail(
            sender=("Q&A", QA),
            to=[f"participant{n}@firm.example.hr"],
            subject=f"Re: [Q-{n}] Kako osnovati klaster?",
            text=ANSWER,
            message_id=new_message_id("answer", "clusters.example.org"),
            date=now,
        )
        rows.append(
            outbox_row(mail, kind=OutboxKind.ANSWER, ref=f"A-{n}", envelope_from=QA, now=now)
        )
    return rows


async def blast(port: int, rows: list[dict[str, Any]]) -> float:
    """The baseline: every mail over one aiosmtplib connection, one after the other."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
    started = time.perf_counter()
    async with client:
        for row in rows:
            await client.sendmail(row["envelope_from"], row["recipients"], row["raw"])
    return len(rows) / (time.perf_counter() - started)


async def new_database(folder: Path, postgres: bool, made: list[str]) -> str:
    name = f"qa_bench_{uuid.uuid4().hex[:10]}"
    if not postgres:
        url = f"sqlite+aiosqlite:///{folder / name}.db"
    else:
        await _postgres(f'CREATE DATABASE "{name}"')
        made.append(name)
        url = (
            f"{POSTGRES.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
        )
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()
    return url


async def _postgres(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES, timeout=10)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def relay_config(port: int, connections: int) -> SmtpRelayConfig:
    return local_relay(port, timeout_seconds=30, connections=connections)


OUTGOING = OutgoingConfig(
    transport="smtp",
    maildir=Path("unused"),
    max_attempts=12,
    retry_base_seconds=30,
    retry_max_seconds=3600,
)


async def queue(url: str, rows: list[dict[str, Any]]) -> None:
    engine = create_engine(url)
    async with session_factory(engine).begin() as tx:
        for start in range(0, len(rows), 1000):
            await tx.execute(insert(OutboxMail), rows[start : start + 1000])
    await engine.dispose()


async def sent_count(sessions: Any) -> int:
    async with sessions() as tx:
        count: int = await tx.scalar(
            select(func.count()).where(OutboxMail.state == OutboxState.SENT)
        )
    return count


async def _all_sent(sessions: Any, count: int) -> bool:
    return await sent_count(sessions) >= count


async def drain(url: str, port: int, connections: int, count: int) -> float:
    """The sender: every queued mail claimed, sent and marked; mails per second."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    clock = SystemClock()
    workers = await registered(sessions, clock)
    sender = Sender(
        sessions, SmtpTransport(relay_config(port, connections)), OUTGOING, clock, workers
    )
    started = time.perf_counter()
    sent = await sender.deliver_due()
    elapsed = time.perf_counter() - started
    done = await sent_count(sessions)
    await engine.dispose()
    assert sent == done == count, (sent, done, count)
    return count / elapsed


async def recovery(url: str, port: int, connections: int, count: int, outage: float) -> float:
    """Seconds from the relay's return until a backlog queued while it was down is sent."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    clock = SystemClock()
    workers = await registered(sessions, clock)
    sender = Sender(
        sessions, SmtpTransport(relay_config(port, connections)), OUTGOING, clock, workers
    )
    stop = asyncio.Event()
    relay = Relay(port)
    running = asyncio.create_task(sender.run(stop))
    try:
        await asyncio.sleep(outage)
        await relay.start()
        back = time.perf_counter()
        await wait_until(lambda: _all_sent(sessions, count), timeout=600, what="the backlog")
        return time.perf_counter() - back
    finally:
        stop.set()
        await running
        await relay.stop()
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mails", type=int, default=5000)
    parser.add_argument("--postgres", action="store_true", help="the outbox on PostgreSQL")
    parser.add_argument("--connections", type=int, default=SmtpRelayConfig.connections)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=460)
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the relay is down")
    parser.add_argument("--relay", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        await _relay(args.relay)
        return
    folder = Path(tempfile.mkdtemp(prefix="qa-bench-send-"))
    made: list[str] = []
    rows = mails(args.mails)
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"{args.mails} mails of ~{sum(len(r['raw']) for r in rows) // len(rows)} bytes, outbox "
        f"on {database}, smtp.connections = {args.connections}, {os.cpu_count()} cores; "
        f"relay: aiosmtpd in its own process"
    )
    port = free_port()
    relay = Relay(port)
    await relay.start()
    ratios, drains, blasts = [], [], []
    try:
        for run in range(1, args.repeat + 1):
            url = await new_database(folder, args.postgres, made)
            await queue(url, rows)
            # The machine's speed drifts: the baseline is the mean of a blast just before
            # and one just after the drain.
            before = await blast(port, rows)
            rate = await drain(url, port, args.connections, len(rows))
            baseline = (before + await blast(port, rows)) / 2
            ratios.append(rate / baseline)
            drains.append(rate)
            blasts.append(baseline)
            print(
                f"  run {run}: plain aiosmtplib, one connection {baseline:6.0f} mails/s (mean of "
                f"{before:.0f} before and {2 * baseline - before:.0f} after); "
                f"outbox drain {rate:6.0f} mails/s; ratio {rate / baseline:5.1%}"
            )
        print(
            f"median: plain blast {statistics.median(blasts):.0f} mails/s, outbox drain "
            f"{statistics.median(drains):.0f} mails/s, ratio {statistics.median(ratios):.1%} "
            f"(goal >= 80%)"
        )
        await relay.stop()
        url = await new_database(folder, args.postgres, made)
        await queue(url, mails(args.backlog))
        seconds = await recovery(url, port, args.connections, args.backlog, args.outage)
        print(
            f"backlog recovery: {args.backlog} mails queued, relay down {args.outage:.0f} s, "
            f"all sent {seconds:.2f} s after it came back"
        )
    finally:
        await relay.stop()
        for name in made:
            await _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
