"""Several `serve` processes on one database, killed at random: nothing lost, nothing twice.

Three processes on PostgreSQL (two on SQLite) share the SMTP listener's port and one IMAP
mailbox. A thousand questions arrive, half by SMTP, half by IMAP, while processes are
SIGKILLed and replaced. Afterwards every question is stored once, acknowledged once and put
before the expert once, nothing is quarantined, and the relay holds exactly one distinct mail
per acknowledgement and per expert copy.

One thing no process can promise is that the relay never sees the same mail twice: a process
killed after the relay's 250 and before it records the mail as sent resends it, with the same
Message-ID (receiving systems treat that as the same message). The sender keeps at most a few
mails per relay connection sent and not yet recorded, so the test counts such resends and bounds
them by that number for each kill.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    InboundMessage,
    MessageState,
    OutboxKind,
    OutboxMail,
    OutboxState,
    Question,
)
from qa_mailer.db.engine import session_factory
from qa_mailer.send.sender import UNRECORDED_PER_CONNECTION
from tests.e2e.conftest import MakeConfig
from tests.helpers import QA, base_settings, make_mail, wait_until
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.fleet import ROOT, Fleet
from tests.servers.imap_client import append, flags_in, inbox_empty
from tests.servers.ports import free_port
from tests.servers.smtp_sink import Received, SmtpSink

QUESTIONS = 1000
COUNTRIES = ("bg", "hr", "rs", "com.tr", "ru")


def question(n: int) -> tuple[bytes, str]:
    sender = f"p{n}@firm{n % 7}.example.{COUNTRIES[n % 5]}"
    raw = make_mail(
        sender=sender,
        subject=f"[VC{n % 5 + 1}] Question {n}",
        body=f"Question number {n}: how does a cluster share its costs?",
        message_id=f"<q{n}@firm.example.org>",
    )
    return raw, sender


@pytest.fixture
def fleet_config(e2e_config: MakeConfig) -> MakeConfig:
    """Settings for serve processes: the listener on, fast heartbeats, short mail claims."""

    def make(**sections: Any) -> Config:
        return e2e_config(
            **{
                "listener": {"enabled": True, "host": "127.0.0.1", "port": free_port()},
                "outgoing": {"retry_base_seconds": 0.5, "retry_max_seconds": 2},
                # A short relay timeout makes short mail claims: a killed process's claimed
                # mail waits for its lease to run out (about 4 x 2 + 3 s here).
                "smtp": {"timeout_seconds": 2},
                # Fast heartbeats, so a killed process's work and mailbox move on quickly;
                # a parsing helper in every process, as the shipped config has on 2 cores.
                "workers": {
                    "heartbeat_seconds": 0.5,
                    "dead_after_seconds": 3,
                    "parse_processes": 1,
                },
                **sections,
            }
        )

    return make


@asynccontextmanager
async def serving(fleet: Fleet, processes: int) -> AsyncIterator[Fleet]:
    """``processes`` serve processes; their logs are printed when the test fails."""
    await fleet.start(processes)
    try:
        yield fleet
    except BaseException:
        await fleet.stop()
        print(fleet.log_text())
        raise


async def send_smtp(port: int, mails: list[tuple[bytes, str]], concurrency: int = 8) -> None:
    """Deliver as an MTA does: a refused or broken connection is retried until a 250."""
    gate = asyncio.Semaphore(concurrency)

    async def one(raw: bytes, sender: str) -> None:
        async with gate:
            for _ in range(300):
                try:
                    await aiosmtplib.send(
                        raw,
                        sender=sender,
                        recipients=[QA],
                        hostname="127.0.0.1",
                        port=port,
                        timeout=10,
                    )
                    return
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    await asyncio.sleep(0.1)
            raise AssertionError(f"{sender}: never accepted")

    await asyncio.gather(*(one(raw, sender) for raw, sender in mails))


async def kill_at_random(fleet: Fleet, rng: random.Random, kills: int, pause: float) -> int:
    """SIGKILL a random process ``kills`` times, starting a replacement first each time."""
    for _ in range(kills):
        await asyncio.sleep(rng.uniform(0.5 * pause, 1.5 * pause))
        victim = rng.choice(fleet.running)
        await fleet.spawn()  # the listener's port always has a process behind it
        await fleet.kill(victim)
    return kills


async def settled(engine: AsyncEngine, total: int) -> bool:
    async with session_factory(engine)() as tx:
        stored = await tx.scalar(select(func.count()).select_from(InboundMessage))
        busy = await tx.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.state.in_((MessageState.RECEIVED, MessageState.PROCESSING)))
        )
        sending = await tx.scalar(
            select(func.count())
            .select_from(OutboxMail)
            .where(OutboxMail.state.in_((OutboxState.QUEUED, OutboxState.SENDING)))
        )
    return stored == total and busy == 0 and sending == 0


@pytest.mark.asyncio
async def test_processes_killed_at_random_lose_nothing_and_do_nothing_twice(
    tmp_path: Path,
    database_url: str,
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    fleet_config: MakeConfig,
) -> None:
    config = fleet_config()
    processes = 3 if database_url.startswith("postgresql") else 2
    fleet = Fleet(config.path, tmp_path / "logs")
    rng = random.Random(6)
    mails = [question(n) for n in range(QUESTIONS)]
    by_smtp, by_imap = mails[::2], mails[1::2]
    async with serving(fleet, processes):
        kills, _, _ = await asyncio.gather(
            kill_at_random(fleet, rng, kills=6, pause=1.5),
            send_smtp(config.listener.port, by_smtp),
            append(dovecot, imap_user, *(raw for raw, _ in by_imap)),
        )
        await wait_until(
            lambda: settled(engine, QUESTIONS), timeout=240, what="every mail processed and sent"
        )
        # A poller killed between storing a mail and moving it leaves the move to the next
        # one, once it takes the mailbox over.
        await wait_until(
            lambda: inbox_empty(dovecot, imap_user), timeout=60, what="the INBOX emptied"
        )
        codes = await fleet.stop()
    assert codes == [0] * processes, fleet.log_text()

    async with session_factory(engine)() as tx:
        states = Counter(
            dict(
                (
                    await tx.execute(
                        select(InboundMessage.state, func.count()).group_by(InboundMessage.state)
                    )
                ).all()
            )  # type: ignore[arg-type]
        )
        questions = await tx.scalar(select(func.count(func.distinct(Question.message_id))))
        outbox = list(
            (
                await tx.execute(
                    select(OutboxMail.kind, OutboxMail.rfc_message_id, OutboxMail.state)
                )
            ).all()
        )
    assert states == {MessageState.PROCESSED: QUESTIONS}, states
    assert questions == QUESTIONS
    kinds = Counter(kind for kind, _, _ in outbox)
    assert kinds == {OutboxKind.ACK: QUESTIONS, OutboxKind.ROUTE: QUESTIONS}
    assert {state for _, _, state in outbox} == {OutboxState.SENT}

    delivered = Counter(str(r.message["Message-ID"]) for r in smtp_sink.received)
    assert set(delivered) == {rfc_id for _, rfc_id, _ in outbox}, (
        "lost or unknown mail at the relay"
    )
    resent = sum(delivered.values()) - len(delivered)
    print(
        f"{processes} processes, {kills} SIGKILLs: {resent} mail(s) resent with the same Message-ID"
    )
    assert resent <= kills * UNRECORDED_PER_CONNECTION * config.smtp.connections

    # The INBOX emptied (waited for above), and every IMAP question was moved once.
    processed = await flags_in(dovecot, imap_user, "Processed")
    assert len(processed) == len(by_imap)


async def run_command(config: Config, *args: str) -> tuple[int, str, float]:
    """Run `qa-mailer ARGS` as an organiser would: (exit code, output, when it started)."""
    started = asyncio.get_running_loop().time()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qa_mailer",
        "--config",
        str(config.path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(), started


def of_kind(sink: SmtpSink, kind: str) -> list[Received]:
    return [r for r in sink.received if f"<qa.{kind}." in str(r.message["Message-ID"])]


async def held_answers(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as tx:
        return int(await tx.scalar(select(func.count()).select_from(Answer)) or 0)


@pytest.mark.asyncio
async def test_organisers_commands_beside_a_running_serve_send_each_mail_once(
    tmp_path: Path,
    database_url: str,
    engine: AsyncEngine,
    smtp_sink: SmtpSink,
    fleet_config: MakeConfig,
) -> None:
    # VC1 collects its questions for a batch; the other sessions send each one at once.
    sessions = [
        {**session, "expert_mail": "batch" if session["number"] == 1 else "each"}
        for session in base_settings(tmp_path, database_url)["sessions"]
    ]
    config = fleet_config(sessions=sessions)
    fleet = Fleet(config.path, tmp_path / "logs")
    async with serving(fleet, 1):
        # Two questions wait for the VC1 batch; the VC2 one goes to the expert at once...
        await send_smtp(config.listener.port, [question(0), question(5), question(1)])
        await wait_until(lambda: _count(of_kind(smtp_sink, "route"), 1), what="the expert copy")
        [route] = [r.message for r in of_kind(smtp_sink, "route")]
        # ...and a stranger answers it with the token: held for an organiser.
        forged = make_mail(
            sender="mallory@evil.example.org",
            to=str(route["Reply-To"]),
            subject=f"Re: {route['Subject']}",
            body="Trust me: the costs are shared by headcount.",
            in_reply_to=str(route["Message-ID"]),
        )
        await send_smtp(config.listener.port, [(forged, "mallory@evil.example.org")])
        await wait_until(lambda: held_answers(engine), what="the held answer")
        # The running service tells the organisers (and the expert, at their own address).
        await wait_until(
            lambda: _count(of_kind(smtp_sink, "notice"), 1), timeout=30, what="the notice"
        )

        results = await asyncio.gather(
            run_command(config, "held", "approve", "A-1"),
            run_command(config, "send-batch"),
            run_command(config, "send-batch"),
            run_command(config, "digest", "--session", "1", "--send"),
        )
        expected = Counter(ack=3, route=2, answer=1, digest=1, held=1, notice=1)
        await wait_until(
            lambda: asyncio.sleep(0, kinds_at(smtp_sink) >= expected),
            timeout=30,
            what=f"{expected} at the relay",
        )
        await asyncio.sleep(2)  # anything sent twice would have arrived by now
        codes = await fleet.stop()
    assert codes == [0], fleet.log_text()
    for code, output, _ in results:
        assert code == 0, output
    approve, batch_a, batch_b, digest = (output for _, output, _ in results)
    assert "handed to the running service" in approve and "1 sent" in approve, approve
    assert "handed to the running service" in digest and "1 sent" in digest, digest
    batched = [batch_a.count("question(s) to"), batch_b.count("question(s) to")]
    assert sorted(batched) == [0, 1], (batch_a, batch_b)

    assert kinds_at(smtp_sink) == expected
    [batch] = [
        r.message for r in of_kind(smtp_sink, "route") if "questions:" in r.message["Subject"]
    ]
    assert batch["Subject"].startswith("[VC1] 2 questions: [Q-")
    # What the commands queued went out through the running service within about a second.
    async with session_factory(engine)() as tx:
        queued = dict(
            (await tx.execute(select(OutboxMail.rfc_message_id, OutboxMail.created_at))).all()
        )
    for kind in ("answer", "digest"):
        [mail] = of_kind(smtp_sink, kind)
        delay = mail.at - queued[str(mail.message["Message-ID"])].timestamp()
        print(f"{kind}: at the relay {delay:.2f} s after the command queued it")
        assert delay < 2


def kinds_at(sink: SmtpSink) -> Counter[str]:
    """The mail at the relay by kind ("ack", "route", ...), from our Message-IDs."""
    return Counter(str(r.message["Message-ID"]).split(".")[1] for r in sink.received)


async def _count(found: list[Received], count: int) -> bool:
    return len(found) >= count
