"""`qa-mailer demo`: the whole story in a few seconds, on the embedded defaults.

Participants from the five countries mail questions (in their own charsets, one HTML-only, one
with quoted history and a phone tagline) to the SMTP listener; an auto-reply arrives too. The
expert reads the copies in the outbox and answers inline; the participants get their answers;
the organisers' digest is written. Everything runs in this process against a fresh SQLite file
and Maildir under --dir, so it never touches the real database.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import mailbox
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import aiosmtplib
from sqlalchemy import func, select

from qa_mailer.app import Service
from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from qa_mailer.db import InboundMessage, MessageState, OutboxMail, OutboxState
from qa_mailer.db.engine import create_engine
from qa_mailer.db.migrate import upgrade
from qa_mailer.demo_mail import answer_for, participant_mails
from qa_mailer.digest.deliver import produce_digest, write_digest_files
from qa_mailer.status import format_status, gather_status

Echo = Callable[[str], None]


def _empty(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def demo_config(config: Config, folder: Path) -> Config:
    """The shipped config, with every file under ``folder`` and the listener on a free port."""
    # VC1 in batch mode: the expert answers every question in one reply.
    sessions = (replace(config.sessions[0], expert_mail="batch"), *config.sessions[1:])
    return replace(
        config,
        sessions=sessions,
        database_url=f"sqlite+aiosqlite:///{folder / 'qa-mailer.db'}",
        listener=replace(config.listener, enabled=True, host="127.0.0.1", port=0, protocol="smtp"),
        imap=None,
        outgoing=replace(config.outgoing, transport="maildir", maildir=folder / "outbox"),
        digest=replace(config.digest, automatic=False, write_to=None),
        # The demo runs offline and its expert answers within seconds: no DNS look-ups of
        # its example domains, and no holding a reply for coming too soon.
        authentication=replace(config.authentication, verify=False),
        expert_check=replace(config.expert_check, min_reply_seconds=0),
    )


async def run_demo(shipped: Config, folder: Path, echo: Echo) -> None:
    started = time.monotonic()
    await asyncio.to_thread(_empty, folder)
    config = demo_config(shipped, folder)
    engine = create_engine(config.database_url)
    await upgrade(engine)
    service = Service(config, engine, clock=SystemClock())
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop, grace_seconds=5))
    try:
        await asyncio.wait_for(service.ready.wait(), 10)
        port = service.listener_port
        assert port is not None
        echo(
            f"qa-mailer is listening for mail on 127.0.0.1:{port}; outgoing mail goes to {config.outgoing.maildir}"
        )
        await _participants_ask(config, port, echo)
        await _settle(service, echo)
        await _expert_answers(service, port, echo)
        await _settle(service, echo)
        await _digest(service, folder, echo)
        await _settle(service, echo)
        async with service.sessions() as session:
            echo("")
            echo(format_status(await gather_status(session, service.clock.now()), config))
    finally:
        stop.set()
        await running
        await engine.dispose()
    outbox = config.outgoing.maildir / "new"
    echo("")
    echo(f"Done in {time.monotonic() - started:.1f} s. Where to look:")
    echo(
        f"  every mail the service sent: {outbox} ({len(list(outbox.iterdir()))} files, readable with any mail client)"
    )
    echo(f"  the organisers' digest:      {folder / 'digests'}/VC1-digest.txt and .html")
    echo(f"  the database:                {folder / 'qa-mailer.db'}")
    echo("Run `qa-mailer serve` to start the service itself on the same defaults.")


async def _participants_ask(config: Config, port: int, echo: Echo) -> None:
    echo("")
    echo("1. Participants from five countries ask their questions by e-mail:")
    for note, raw in participant_mails(config):
        sender = email.message_from_bytes(raw, policy=email.policy.default)["From"]
        await aiosmtplib.send(
            raw,
            sender=sender.addresses[0].addr_spec,
            recipients=[config.address.tagged("vc1")],
            hostname="127.0.0.1",
            port=port,
            timeout=10,
        )
        echo(f"   {sender.addresses[0].addr_spec!s:40} {note}")


def _acknowledgements(config: Config, echo: Echo) -> None:
    """Each participant's acknowledgement, in their own language: its greeting and first line."""
    echo("   Each is acknowledged in the language they wrote in:")
    for _, message in sorted(mailbox.Maildir(config.outgoing.maildir, create=False).items()):
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        if not str(parsed["Message-ID"]).startswith("<qa.ack."):
            continue
        body = parsed.get_body(("plain",))
        lines = [line for line in str(body.get_content() if body else "").splitlines() if line]
        to = parsed["To"].addresses[0].addr_spec
        echo(f"   {to:40} {' '.join(lines[:2])[:90]}")


async def _expert_answers(service: Service, port: int, echo: Echo) -> None:
    config = service.config
    _acknowledgements(config, echo)
    await service.batches.send_due(now=True)
    await _settle(service, echo)
    echo("")
    echo("2. VC1 is in batch mode: the expert gets the questions in one mail, answers under each")
    echo("   one in a single reply, and gets a receipt:")
    for _, message in mailbox.Maildir(config.outgoing.maildir, create=False).items():
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        if not str(parsed["Message-ID"]).startswith("<qa.route."):
            continue
        await aiosmtplib.send(
            _inline_reply(config, parsed),
            sender=config.sessions[0].experts[0],
            recipients=[str(parsed["Reply-To"])],
            hostname="127.0.0.1",
            port=port,
            timeout=10,
        )
        echo(f'   the expert replied to "{parsed["Subject"]}"')
    await _settle(service, echo)
    for _, message in mailbox.Maildir(config.outgoing.maildir, create=False).items():
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        if str(parsed["Message-ID"]).startswith("<qa.receipt."):
            echo(f'   receipt to the expert: "{parsed["Subject"]}"')


def _inline_reply(config: Config, batch: EmailMessage) -> bytes:
    """The expert's reply: the batch quoted, an answer typed under each question."""
    body = batch.get_body(preferencelist=("plain",))
    assert body is not None
    lines = body.get_content().replace("\r\n", "\n").strip().split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("[Q-")] + [len(lines)]
    reply = [
        "Dear colleagues, my answers are below.",
        "",
        f"On {batch['Date']}, {batch['From']} wrote:",
    ]
    reply += [f"> {line}" if line else ">" for line in lines[: starts[0]]]
    for begin, end in itertools.pairwise(starts):
        block = lines[begin:end]
        while block and not block[-1].strip():
            block.pop()
        reply += [f"> {line}" if line else ">" for line in block]
        reply += ["", answer_for("\n".join(block)) or "I will answer this one in the session.", ""]
    reply += ["Best regards,", "Prof. Example Expert", "", "Sent from my iPhone"]
    mail = EmailMessage()
    mail["From"] = config.sessions[0].experts[0]
    mail["To"] = str(batch["Reply-To"])
    mail["Subject"] = f"Re: {batch['Subject']}"
    mail["Message-ID"] = make_msgid(domain="expert.example.org")
    mail["In-Reply-To"] = str(batch["Message-ID"])
    mail["References"] = str(batch["Message-ID"])
    mail["Date"] = format_datetime(SystemClock().now())
    mail.set_content("\n".join(reply))
    return mail.as_bytes()


async def _digest(service: Service, folder: Path, echo: Echo) -> None:
    echo("")
    echo("3. The organisers' digest of VC1:")
    async with service.sessions.begin() as session:
        rendered = await produce_digest(
            session, service.config, service.roster, service.templates, service.clock, 1, send=True
        )
    service.sender.wakeup.set()
    write_digest_files(folder / "digests", rendered)
    echo("")
    for line in rendered.text.rstrip().split("\n"):
        echo("   " + line if line else "")


async def _settle(service: Service, echo: Echo, timeout: float = 20.0) -> None:
    """Wait until every stored message is processed and every queued mail is sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with service.sessions() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(InboundMessage)
                .where(InboundMessage.state.in_((MessageState.RECEIVED, MessageState.PROCESSING)))
            )
            queued = await session.scalar(
                select(func.count())
                .select_from(OutboxMail)
                .where(OutboxMail.state.in_((OutboxState.QUEUED, OutboxState.SENDING)))
            )
        if not waiting and not queued:
            return
        await asyncio.sleep(0.05)
    echo(
        f"   (still {waiting} message(s) to process and {queued} mail(s) to send after {timeout:.0f} s)"
    )
