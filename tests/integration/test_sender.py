"""The outbox sender against an aiosmtpd relay: delivery, retries with backoff, failures, crashes."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import undefer

from qa_mailer.config import OutgoingConfig, SmtpRelayConfig
from qa_mailer.db import OutboxKind, OutboxMail, OutboxState
from qa_mailer.db.claims import ClaimedMail
from qa_mailer.db.engine import session_factory
from qa_mailer.send.compose import build_mail, new_message_id
from qa_mailer.send.outbox import enqueue
from qa_mailer.send.sender import Sender
from qa_mailer.send.transport import MaildirTransport, SmtpTransport, Transport
from tests.helpers import QA, FakeClock, registered
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
    engine: AsyncEngine,
    clock: FakeClock,
    to: Sequence[str] = ("ana@drvo.example.hr",),
    ref: str = "A-1",
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
        queued = enqueue(
            session, mail, kind=OutboxKind.ANSWER, ref=ref, envelope_from=QA, clock=clock
        )
        await session.flush()
        return queued


async def row(engine: AsyncEngine, mail_id: int) -> OutboxMail:
    async with session_factory(engine)() as session:
        found = await session.get(OutboxMail, mail_id, options=[undefer(OutboxMail.raw)])
    assert found is not None
    return found


async def sender(
    engine: AsyncEngine, transport: Transport, clock: FakeClock, kind: type[Sender] = Sender
) -> Sender:
    sessions = session_factory(engine)
    workers = await registered(sessions, clock)
    return kind(sessions, transport, OUTGOING, clock, workers, rng=lambda: 1.0)


@pytest.mark.asyncio
async def test_a_queued_mail_is_delivered_byte_for_byte(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    assert await (await sender(engine, relay(smtp_sink.port), clock)).deliver_due() == 1
    [received] = smtp_sink.received
    assert received.raw.replace(b"\r\n", b"\n") == queued.raw.replace(b"\r\n", b"\n")
    assert (received.mail_from, received.rcpt_tos) == (QA, ["ana@drvo.example.hr"])
    sent = await row(engine, queued.id)
    assert (sent.state, sent.attempts, sent.sent_at) == (OutboxState.SENT, 1, clock.now())
    assert (sent.claimed_by, sent.lease_until) == (None, None)


@pytest.mark.asyncio
async def test_a_4xx_waits_with_backoff_then_sends_the_same_mail(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    smtp_sink.refuse = "451 4.3.0 try later"
    outbox = await sender(engine, relay(smtp_sink.port), clock)
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
    assert smtp_sink.received[0].message["Message-ID"] == queued.rfc_message_id


@pytest.mark.asyncio
async def test_backoff_doubles_and_gives_up_after_max_attempts(engine: AsyncEngine) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    outbox = await sender(engine, relay(free_port()), clock)  # nothing listens there
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
    await (await sender(engine, relay(smtp_sink.port), clock)).deliver_due()
    failed = await row(engine, queued.id)
    assert failed.state == OutboxState.FAILED and failed.attempts == 1


@pytest.mark.asyncio
async def test_one_refused_recipient_does_not_resend_to_the_others(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock, to=["a@org.example.bg", "gone@org.example.bg"])
    smtp_sink.refuse_rcpt["gone@org.example.bg"] = "550 5.1.1 no such user"
    await (await sender(engine, relay(smtp_sink.port), clock)).deliver_due()
    done = await row(engine, queued.id)
    assert done.state == OutboxState.SENT and "gone@org.example.bg: 550" in (done.last_error or "")
    assert [r.rcpt_tos for r in smtp_sink.received] == [["a@org.example.bg"]]


class DiesBeforeMarking(Sender):
    async def _sent(self, mail: ClaimedMail, error: str | None) -> None:
        raise SystemExit("power cut")


@pytest.mark.asyncio
async def test_a_crash_after_sending_resends_the_same_message_id_once_the_claim_runs_out(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    crashing = await sender(engine, relay(smtp_sink.port), clock, DiesBeforeMarking)
    with pytest.raises(SystemExit):
        await crashing.deliver_due()
    claimed = await row(engine, queued.id)
    assert (claimed.state, claimed.claimed_by) == (OutboxState.SENDING, crashing._workers.id)
    survivor = await sender(engine, relay(smtp_sink.port), clock)
    assert await survivor.deliver_due() == 0, "the claim is the crashed worker's until it runs out"
    clock.advance(seconds=crashing.lease.total_seconds())
    assert await survivor.deliver_due() == 1
    first, second = smtp_sink.received
    assert first.raw == second.raw and first.message["Message-ID"] == queued.rfc_message_id
    done = await row(engine, queued.id)
    assert (done.state, done.attempts) == (OutboxState.SENT, 2)


@pytest.mark.asyncio
async def test_a_mail_claim_is_not_taken_from_a_worker_presumed_dead_before_its_lease_ends(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    # A worker thought dead may only be slow, and may be sending this very mail: its
    # claim is free only when the lease it last renewed runs out.
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    crashing = await sender(engine, relay(smtp_sink.port), clock, DiesBeforeMarking)
    with pytest.raises(SystemExit):
        await crashing.deliver_due()
    survivor = await sender(engine, relay(smtp_sink.port), clock)
    clock.advance(seconds=survivor._workers.timing.dead_after_seconds + 1)
    assert await survivor._workers.beat() == [crashing._workers.id]
    assert await survivor.deliver_due() == 0
    clock.advance(seconds=crashing.lease.total_seconds())
    assert await survivor.deliver_due() == 1
    assert (await row(engine, queued.id)).state == OutboxState.SENT
    assert len(smtp_sink.received) == 2  # sent, crashed before marking, sent again once


@pytest.mark.asyncio
async def test_a_sender_sends_nothing_its_claim_may_not_outlast(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    await queue_mail(engine, clock, ref="A-1")
    await queue_mail(engine, clock, ref="A-2")

    class Slow(Sender):
        async def _deliver(self, mail: ClaimedMail) -> int:
            sent = await super()._deliver(mail)
            clock.advance(seconds=self.lease.total_seconds())  # the claim is not renewed
            return sent

    slow = await sender(engine, relay(smtp_sink.port), clock, Slow)
    assert await slow.deliver_due() == 1, "the second mail waits: its claim could run out"
    assert await (await sender(engine, relay(smtp_sink.port), clock)).deliver_due() == 1
    assert len(smtp_sink.received) == 2


@pytest.mark.asyncio
async def test_two_senders_on_one_outbox_send_each_mail_once(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    import asyncio

    clock = FakeClock()
    queued = [await queue_mail(engine, clock, ref=f"A-{n}") for n in range(30)]
    senders = [await sender(engine, relay(smtp_sink.port), clock) for _ in range(3)]
    counts = await asyncio.gather(*(s.deliver_due() for s in senders))
    assert sum(counts) == len(queued)
    ids = [r.message["Message-ID"] for r in smtp_sink.received]
    assert sorted(ids) == sorted(q.rfc_message_id for q in queued)


@pytest.mark.asyncio
async def test_the_maildir_transport_keeps_the_envelope(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    await (await sender(engine, MaildirTransport(tmp_path / "outbox"), clock)).deliver_due()
    [(_, stored)] = mailbox.Maildir(tmp_path / "outbox").items()
    message = email.message_from_bytes(stored.as_bytes(), policy=email.policy.default)
    assert message["X-Envelope-To"] == "ana@drvo.example.hr" and message["Return-Path"] == f"<{QA}>"
    assert message["Message-ID"] == queued.rfc_message_id
    async with session_factory(engine)() as session:
        assert (await session.scalars(select(OutboxMail.state))).one() == OutboxState.SENT


@pytest.mark.asyncio
async def test_the_maildir_transport_writes_a_mail_once_however_often_it_is_sent(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    outbox = tmp_path / "outbox"
    crashing = await sender(engine, MaildirTransport(outbox), clock, DiesBeforeMarking)
    with pytest.raises(SystemExit):
        await crashing.deliver_due()
    clock.advance(seconds=crashing.lease.total_seconds())
    assert await (await sender(engine, MaildirTransport(outbox), clock)).deliver_due() == 1
    assert len(os.listdir(outbox / "new")) == 1 and os.listdir(outbox / "tmp") == []
    assert (await row(engine, queued.id)).state == OutboxState.SENT
    # A mail client that read it moved it to cur/ with a flag: still delivered once.
    [name] = os.listdir(outbox / "new")
    os.rename(outbox / "new" / name, outbox / "cur" / f"{name}:2,S")
    transport = MaildirTransport(outbox)
    await transport.send(QA, ["ana@drvo.example.hr"], queued.raw, "same-name")
    await transport.send(QA, ["ana@drvo.example.hr"], queued.raw, "same-name")
    assert len(os.listdir(outbox / "new")) == 1
