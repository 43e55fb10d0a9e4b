"""The outbox sender against an aiosmtpd relay: delivery, retries with backoff, failures, crashes."""

from __future__ import annotations

import email
import email.policy
import mailbox
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.config import OutgoingConfig, SmtpRelayConfig
from qa_mailer.db import OutboxKind, OutboxMail, OutboxState
from qa_mailer.db.engine import session_factory
from qa_mailer.send.compose import build_mail, new_message_id
from qa_mailer.send.outbox import enqueue
from qa_mailer.send.sender import Sender
from qa_mailer.send.transport import MaildirTransport, SmtpTransport, Transport
from tests.helpers import QA, FakeClock
from tests.servers.ports import free_port
from tests.servers.smtp_sink import SmtpSink

OUTGOING = OutgoingConfig(
    transport="smtp",
    maildir=Path("unused"),
    max_attempts=3,
    retry_base_seconds=30,
    retry_max_seconds=600,
)


def relay(port: int) -> SmtpTransport:
    return SmtpTransport(
        SmtpRelayConfig(
            host="127.0.0.1",
            port=port,
            security="none",
            username=None,
            password_env=None,
            timeout_seconds=5,
            ca_file=None,
        )
    )


async def queue_mail(
    engine: AsyncEngine, clock: FakeClock, to: Sequence[str] = ("ana@drvo.example.hr",)
) -> OutboxMail:
    async with session_factory(engine).begin() as session:
        mail = build_mail(
            sender=("Q&A", QA),
            to=list(to),
            subject="Re: Pitanje [Q-1]",
            text="Odgovor: da.",
            message_id=new_message_id("answer", "clusters.example.org"),
            date=clock.now(),
        )
        return enqueue(session, mail, kind=OutboxKind.ANSWER, envelope_from=QA, clock=clock)


async def row(engine: AsyncEngine, mail_id: int) -> OutboxMail:
    async with session_factory(engine)() as session:
        found = await session.get(OutboxMail, mail_id)
    assert found is not None
    return found


def sender(engine: AsyncEngine, transport: Transport, clock: FakeClock) -> Sender:
    return Sender(session_factory(engine), transport, OUTGOING, clock, rng=lambda: 1.0)


@pytest.mark.asyncio
async def test_a_queued_mail_is_delivered_byte_for_byte(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    assert await sender(engine, relay(smtp_sink.port), clock).deliver_due() == 1
    [received] = smtp_sink.received
    assert received.raw.replace(b"\r\n", b"\n") == queued.raw.replace(b"\r\n", b"\n")
    assert (received.mail_from, received.rcpt_tos) == (QA, ["ana@drvo.example.hr"])
    sent = await row(engine, queued.id)
    assert (sent.state, sent.attempts, sent.sent_at) == (OutboxState.SENT, 1, clock.now())


@pytest.mark.asyncio
async def test_a_4xx_waits_with_backoff_then_sends_the_same_mail(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    smtp_sink.refuse = "451 4.3.0 try later"
    outbox = sender(engine, relay(smtp_sink.port), clock)
    assert await outbox.deliver_due() == 0
    waiting = await row(engine, queued.id)
    assert (
        waiting.state == OutboxState.QUEUED
        and waiting.attempts == 1
        and "451" in (waiting.last_error or "")
    )
    assert (
        waiting.next_attempt_at - clock.now()
    ).total_seconds() == 30  # base delay, jitter fixed at 100%
    smtp_sink.refuse = None
    assert await outbox.deliver_due() == 0, "not due yet"
    clock.advance(seconds=31)
    assert await outbox.deliver_due() == 1
    assert smtp_sink.received[0].message["Message-ID"] == queued.message_id


@pytest.mark.asyncio
async def test_backoff_doubles_and_gives_up_after_max_attempts(engine: AsyncEngine) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    outbox = sender(engine, relay(free_port()), clock)  # nothing listens there
    delays = []
    for _ in range(OUTGOING.max_attempts):
        await outbox.deliver_due()
        current = await row(engine, queued.id)
        delays.append((current.next_attempt_at - clock.now()).total_seconds())
        clock.advance(seconds=3600)
    assert delays[:2] == [30, 60]
    failed = await row(engine, queued.id)
    assert (
        failed.state == OutboxState.FAILED
        and failed.attempts == 3
        and "unreachable" in (failed.last_error or "")
    )


@pytest.mark.asyncio
async def test_a_5xx_fails_at_once(engine: AsyncEngine, smtp_sink: SmtpSink) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    smtp_sink.refuse = "554 5.7.1 rejected"
    await sender(engine, relay(smtp_sink.port), clock).deliver_due()
    failed = await row(engine, queued.id)
    assert failed.state == OutboxState.FAILED and failed.attempts == 1


@pytest.mark.asyncio
async def test_one_refused_recipient_does_not_resend_to_the_others(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock, to=["a@org.example.bg", "gone@org.example.bg"])
    smtp_sink.refuse_rcpt["gone@org.example.bg"] = "550 5.1.1 no such user"
    await sender(engine, relay(smtp_sink.port), clock).deliver_due()
    done = await row(engine, queued.id)
    assert done.state == OutboxState.SENT and "gone@org.example.bg: 550" in (done.last_error or "")
    assert [r.rcpt_tos for r in smtp_sink.received] == [["a@org.example.bg"]]


@pytest.mark.asyncio
async def test_a_crash_after_sending_resends_the_same_message_id(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)

    class DiesBeforeMarking(Sender):
        async def _sent(self, mail: OutboxMail, error: str | None) -> None:
            raise SystemExit("power cut")

    with pytest.raises(SystemExit):
        await DiesBeforeMarking(
            session_factory(engine), relay(smtp_sink.port), OUTGOING, clock
        ).deliver_due()
    assert (await row(engine, queued.id)).state == OutboxState.QUEUED
    await sender(engine, relay(smtp_sink.port), clock).deliver_due()
    first, second = smtp_sink.received
    assert first.raw == second.raw and first.message["Message-ID"] == queued.message_id
    assert (await row(engine, queued.id)).state == OutboxState.SENT


@pytest.mark.asyncio
async def test_the_maildir_transport_keeps_the_envelope(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    await sender(engine, MaildirTransport(tmp_path / "outbox"), clock).deliver_due()
    [(_, stored)] = mailbox.Maildir(tmp_path / "outbox").items()
    message = email.message_from_bytes(stored.as_bytes(), policy=email.policy.default)
    assert message["X-Envelope-To"] == "ana@drvo.example.hr" and message["Return-Path"] == f"<{QA}>"
    assert message["Message-ID"] == queued.message_id
    async with session_factory(engine)() as session:
        assert (await session.scalars(select(OutboxMail.state))).one() == OutboxState.SENT
