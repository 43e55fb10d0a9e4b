"""The token-guessing attack of issue 7, item 8, replayed against the running service.

One sender sends GUESSES replies with random tokens to the SMTP listener of a service on
SQLite, as fast as one SMTP connection goes; the script waits until every one is processed
and prints how long that took, what became of them (held, ignored) and how many lines
`held list` shows for that sender.

Usage: python bench/bench_guessing.py [GUESSES]
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa_mailer import admin
from qa_mailer.app import Service
from qa_mailer.clock import SystemClock
from qa_mailer.db import InboundMessage, migrate
from qa_mailer.db.engine import create_engine, session_factory
from tests.helpers import make_mail, write_config
from tests.servers.ports import free_port

GUESSER = "mallory@evil.example.org"


async def main(guesses: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-guessing-"))
    config = write_config(
        folder, f"sqlite+aiosqlite:///{folder / 'qa.db'}", listener={"port": free_port()}
    )
    engine = create_engine(config.database_url)
    await migrate.upgrade(engine)
    service = Service(config, engine, clock=SystemClock())
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(service.ready.wait(), 10)
    addresses = [config.address.tagged(f"r{secrets.token_hex(10)}") for _ in range(guesses)]
    mails = [
        (to, make_mail(sender=GUESSER, to=to, subject="Re: [Q-1]", body="Publish this."))
        for to in addresses
    ]
    started = time.perf_counter()
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=config.listener.port, timeout=30)
    await smtp.connect()
    for to, raw in mails:
        await smtp.sendmail(GUESSER, [to], raw)
    await smtp.quit()
    sent = time.perf_counter() - started
    sessions = session_factory(engine)
    while True:
        async with sessions() as tx:
            states = Counter(
                dict(
                    (
                        await tx.execute(
                            select(InboundMessage.state, func.count()).group_by(
                                InboundMessage.state
                            )
                        )
                    ).all()
                )  # type: ignore[arg-type]
            )
        if (
            sum(states.values()) == guesses
            and not states.get("received")
            and not states.get("processing")
        ):
            break
        await asyncio.sleep(0.05)
    done = time.perf_counter() - started
    stop.set()
    await task
    lines = [g for g in await admin.unknown_token_senders(engine) if g.sender == GUESSER]
    await engine.dispose()
    print(f"{guesses} replies with random tokens from one sender")
    print(f"  sent over one SMTP connection in {sent:.2f} s; all processed after {done:.2f} s")
    print(f"  outcome: {dict(states)}")
    print(f"  `held list` lines for the sender: {len(lines)}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
