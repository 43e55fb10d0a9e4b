"""Peak memory of the IMAP poller taking in large mail.

    sudo .venv/bin/python bench/bench_imap_memory.py [--big-mb 51] [--mails 25] [--mail-mb 9]

A private Dovecot mailbox holds one message of --big-mb (over the 25 MiB limit) and --mails
messages of --mail-mb each (under it, together far over one fetch batch's byte budget). The
poller, as `serve` runs it, takes them all into a fresh SQLite file; the script prints the
process's peak resident memory before and after. The mail is written straight into the
Maildir a line at a time, so building it costs no memory. Needs root and Dovecot.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.clock import SystemClock
from qa_mailer.db import InboundMessage, migrate
from qa_mailer.db.engine import create_engine, session_factory
from qa_mailer.ingest import imap
from qa_mailer.ingest.store import MessageStore
from qa_mailer.workers import Workers
from tests.servers.dovecot import NOBODY, DovecotServer, ImapUser, imap_config_for

LINE = b"A line of a long attachment, base64 or not, repeated to make up the size.\r\n"


def write_mail(folder: Path, name: str, subject: str, megabytes: float) -> None:
    path = folder / "new" / name
    with path.open("wb") as out:
        out.write(
            b"From: ana@drvo.example.hr\r\nTo: qa@clusters.example.org\r\n"
            + f"Subject: {subject}\r\nMessage-ID: <{name}@drvo.example.hr>\r\n".encode()
            + b"Date: Sun, 29 Nov 2026 18:00:00 +0000\r\n\r\n"
        )
        for _ in range(int(megabytes * 1_000_000) // len(LINE)):
            out.write(LINE)
    os.chown(path, NOBODY, NOBODY)


def fill(server: DovecotServer, user: ImapUser, big_mb: float, mails: int, mail_mb: float) -> None:
    folder = server.maildir(user)
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    write_mail(folder, f"{time.time():.0f}.M0P1.big", "too big", big_mb)
    for n in range(mails):
        write_mail(folder, f"{time.time():.0f}.M{n + 1}P1.mail", f"mail {n}", mail_mb)
    for root, dirs, files in os.walk(server.root / "home"):
        for name in dirs + files:
            os.chown(Path(root) / name, NOBODY, NOBODY)
        os.chown(root, NOBODY, NOBODY)


async def take_in(server: DovecotServer, user: ImapUser, expected: int, database: str) -> float:
    engine = create_engine(database)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    workers = Workers(sessions, SystemClock())
    await workers.register(["bench"])
    os.environ["QA_BENCH_PW"] = user.password
    config = imap_config_for(
        server,
        user,
        password_env="QA_BENCH_PW",
        idle_renew_seconds=300,
        poll_seconds=60,
        timeout_seconds=120,
        fetch_batch=25,
    )
    store = MessageStore(sessions, SystemClock(), lambda: None)
    # The limits as `serve` passes them (the shipped defaults); older pollers took none.
    extra = {}
    if "limits" in inspect.signature(imap.ImapPoller).parameters:
        extra["limits"] = imap.FetchLimits()
    poller = imap.ImapPoller(config, store, sessions, workers, **extra)
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(poller.run(stop))
    while time.monotonic() - started < 600:
        if await _stored(engine) >= expected:
            break
        await asyncio.sleep(0.2)
    took = time.monotonic() - started
    stop.set()
    await asyncio.wait_for(task, 120)
    await engine.dispose()
    return took


async def _stored(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big-mb", type=float, default=51)
    parser.add_argument("--mails", type=int, default=25)
    parser.add_argument("--mail-mb", type=float, default=9)
    args = parser.parse_args()
    server = DovecotServer.start_new()
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        user = server.add_user()
        fill(server, user, args.big_mb, args.mails, args.mail_mb)
        before = peak_mb()
        took = asyncio.run(
            take_in(server, user, args.mails + 1, f"sqlite+aiosqlite:///{work / 'bench.db'}")
        )
        print(
            f"1 mail of {args.big_mb:.0f} MB and {args.mails} of {args.mail_mb:.0f} MB taken in "
            f"{took:.1f} s; peak RSS {before:.0f} MB before, {peak_mb():.0f} MB after"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
