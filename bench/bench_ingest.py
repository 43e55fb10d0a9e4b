"""Ingest speed next to a baseline measured in the same run.

    sudo .venv/bin/python bench/bench_ingest.py [--messages 2000]

A private Dovecot mailbox of N questions is read by
- stdlib imaplib, UID FETCH in batches (the fastest plain client: an upper bound),
- aioimaplib, UID FETCH in the poller's batch size (what the poller is built on),
- qa-mailer's poller: fetch, store raw in SQLite with the cursor, mark and move.
Processing what was stored is measured by bench/bench_process.py.
Needs root and Dovecot, like the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from qa_mailer.clock import SystemClock
from qa_mailer.config import ImapConfig
from qa_mailer.db import migrate
from qa_mailer.db.engine import create_engine, session_factory
from qa_mailer.ingest.imap import ImapPoller, connect, parse_fetch
from qa_mailer.ingest.store import MessageStore
from qa_mailer.workers import Workers
from tests.helpers import make_mail
from tests.servers.dovecot import NOBODY, DovecotServer, ImapUser, imap_config_for

BATCH = 25
SENDERS = [
    "ana@drvo.example.hr",
    "petar@mebeli.example.bg",
    "ivan@zavod.example.ru",
    "ayse@mobilya.example.com.tr",
]


def questions(n: int) -> list[bytes]:
    body = "Kako klaster pomaže malim proizvođačima namještaja u izvozu? " * 20
    return [
        make_mail(
            sender=SENDERS[i % 4], subject=f"[VC{i % 5 + 1}] Pitanje {i}", body=f"{i}: {body}"
        )
        for i in range(n)
    ]


def fill(server: DovecotServer, user: ImapUser, mails: list[bytes]) -> None:
    """Deliver straight into the Maildir, as the local delivery agent would."""
    folder = server.maildir(user)
    for sub in ("tmp", "new", "cur"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for index, raw in enumerate(mails):
        path = folder / "new" / f"{time.time():.0f}.M{index}P1.bench"
        path.write_bytes(raw.replace(b"\n", b"\r\n"))
    for root, dirs, files in os.walk(server.root / "home"):
        for name in dirs + files:
            os.chown(Path(root) / name, NOBODY, NOBODY)
        os.chown(root, NOBODY, NOBODY)


def stdlib_fetch(server: DovecotServer, user: ImapUser) -> int:
    client = imaplib.IMAP4("127.0.0.1", server.port)
    client.login(user.name, user.password)
    client.select("INBOX", readonly=True)
    uids = client.uid("search", None, "ALL")[1][0].split()
    fetched = 0
    for start in range(0, len(uids), 250):
        _, data = client.uid(
            "fetch", b",".join(uids[start : start + 250]).decode(), "(BODY.PEEK[])"
        )
        fetched += sum(1 for item in data if isinstance(item, tuple))
    client.logout()
    return fetched


async def aioimaplib_fetch(config: ImapConfig) -> int:
    client = (await connect(config)).client
    await client.select("INBOX")
    response = await client.uid_search("ALL", charset=None)
    uids = [int(t) for line in response.lines[:-1] for t in line.split() if t.isdigit()]
    fetched = 0
    for start in range(0, len(uids), BATCH):
        batch = ",".join(map(str, uids[start : start + BATCH]))
        fetched += len(parse_fetch((await client.uid("fetch", batch, "(UID BODY.PEEK[])")).lines))
    await client.logout()
    return fetched


async def poller_ingest(config: ImapConfig, database: str) -> int:
    engine = create_engine(database)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    workers = Workers(sessions, SystemClock())
    await workers.register(["bench"])
    poller = ImapPoller(
        config, MessageStore(sessions, SystemClock(), lambda: None), sessions, workers
    )
    # The poller marks and moves mail only while it holds the mailbox's lease.
    await workers.acquire(poller.lease)
    connection = await connect(config)
    state = await poller._select(connection)
    stored = await poller.sync(connection, state)
    await connection.logout()
    await engine.dispose()
    return stored


def timed(label: str, baseline: float | None, work: object) -> float:
    started = time.perf_counter()
    count = asyncio.run(work) if asyncio.iscoroutine(work) else work()  # type: ignore[operator]
    seconds = time.perf_counter() - started
    rate = count / seconds
    versus = f"{rate / baseline:6.2f}x baseline" if baseline else "baseline"
    print(f"  {label:58} {count:6d} msgs {seconds:7.2f} s {rate:9.0f} msg/s   {versus}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument(
        "--database",
        help="an empty database URL to use instead of a fresh SQLite file (it is filled)",
    )
    args = parser.parse_args()
    server = DovecotServer.start_new()
    work = Path(tempfile.mkdtemp(prefix="qa-bench-"))
    try:
        mails = questions(args.messages)
        print(
            f"{args.messages} questions of {sum(map(len, mails)) // len(mails)} bytes each, Dovecot {server.port}"
        )
        print("IMAP ingest:")
        plain, poll = server.add_user(), server.add_user()
        fill(server, plain, mails)
        fill(server, poll, mails)
        os.environ["QA_BENCH_PW"] = plain.password
        config = imap_config_for(
            server,
            plain,
            password_env="QA_BENCH_PW",
            idle_renew_seconds=300,
            poll_seconds=60,
            timeout_seconds=60,
            fetch_batch=BATCH,
        )
        timed(
            "stdlib imaplib, UID FETCH 250 per command (no storing)",
            None,
            lambda: stdlib_fetch(server, plain),
        )
        raw_rate = timed(
            f"aioimaplib, UID FETCH {BATCH} per command (no storing)",
            None,
            aioimaplib_fetch(config),
        )
        os.environ["QA_BENCH_PW"] = poll.password
        database = args.database or f"sqlite+aiosqlite:///{work / 'bench.db'}"
        timed(
            f"qa-mailer poller: fetch + store raw ({_kind(database)}) + mark + move",
            raw_rate,
            poller_ingest(replace(config, username=poll.name), database),
        )
    finally:
        server.stop()


def _kind(database: str) -> str:
    return "SQLite" if database.startswith("sqlite") else "PostgreSQL"


if __name__ == "__main__":
    main()
