"""How long the IMAP poller takes to resume after the server restarts.

    sudo .venv/bin/python bench/bench_imap_restart.py [--restarts 5] [--down 1.0]

A private Dovecot serves a mailbox the poller idles on (timeout_seconds 30, as shipped). Each
round stops Dovecot with its imap processes (as a service manager does), keeps it down for
--down seconds, starts it again, delivers a message at once, and measures how long until the
message is stored. Needs root and Dovecot, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from qa_mailer.clock import SystemClock
from qa_mailer.db import InboundMessage, migrate
from qa_mailer.db.engine import create_engine, session_factory
from qa_mailer.ingest.imap import ImapPoller
from qa_mailer.ingest.store import MessageStore
from qa_mailer.workers import Workers
from tests.helpers import make_mail
from tests.servers.dovecot import DovecotServer, imap_config_for
from tests.servers.imap_client import append


async def measure(restarts: int, down: float, limit: float) -> list[float]:
    server = DovecotServer.start_new()
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    engine = create_engine(f"sqlite+aiosqlite:///{work / 'bench.db'}")
    stop = asyncio.Event()
    try:
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        workers = Workers(sessions, SystemClock())
        await workers.register(["bench"])
        user = server.add_user()
        os.environ["QA_BENCH_PW"] = user.password
        config = imap_config_for(
            server,
            user,
            password_env="QA_BENCH_PW",
            idle_renew_seconds=300,
            poll_seconds=60,
            timeout_seconds=30,
            fetch_batch=25,
        )
        store = MessageStore(sessions, SystemClock(), lambda: None)
        poller = ImapPoller(config, store, sessions, workers)
        task = asyncio.create_task(poller.run(stop))
        await asyncio.wait_for(poller.connected.wait(), 30)
        took: list[float] = []
        for round_ in range(restarts):
            await asyncio.to_thread(server.shut_down)
            await asyncio.sleep(down)
            await asyncio.to_thread(server.start_again)
            back = time.monotonic()
            await append(
                server, user, make_mail(sender="ana@drvo.example.hr", subject=f"r{round_}")
            )
            while await _stored(engine) < round_ + 1:
                if time.monotonic() - back > limit:
                    break
                await asyncio.sleep(0.02)
            took.append(time.monotonic() - back)
            print(f"  restart {round_ + 1}: stored {took[-1]:6.2f} s after the server was back")
        stop.set()
        await asyncio.wait_for(task, 90)
        return took
    finally:
        stop.set()
        await engine.dispose()
        server.stop()


async def _stored(engine: object) -> int:
    async with session_factory(engine)() as session:  # type: ignore[arg-type]
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--down", type=float, default=1.0, help="seconds the server stays down")
    parser.add_argument("--limit", type=float, default=120.0, help="give up a round after this")
    args = parser.parse_args()
    took = asyncio.run(measure(args.restarts, args.down, args.limit))
    print(
        f"resumed after a restart: median {statistics.median(took):.2f} s, max {max(took):.2f} s "
        f"({len(took)} restarts, server down {args.down:.1f} s plus its own stop time)"
    )


if __name__ == "__main__":
    main()
