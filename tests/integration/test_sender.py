"""The outbox sender against an aiosmtpd relay: delivery, retries with backoff, failures, crashes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import mailbox
import os
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import undefer

from qa_mailer.admin import hand_over
from qa_mailer.config import OutgoingConfig
from qa_mailer.db import OutboxKind, OutboxMail, OutboxState
from qa_mailer.db.claims import ClaimedMail
from qa_mailer.db.engine import session_factory
from qa_mailer.send.compose import build_mail, new_message_id
from qa_mailer.send.outbox import enqueue
from qa_mailer.send.record import Outcome
from qa_mailer.send.sender import Sender
from qa_mailer.send.transport import MaildirTransport, Refusals, SmtpTransport, Transport
from qa_mailer.status import format_status, gather_status
from tests.helpers import QA, FakeClock, local_relay, registered, wait_until, write_config
from tests.servers.ports import free_port
from tests.servers.smtp_sink import SmtpSink

OUTGOING = OutgoingConfig(
    transport="smtp",
    maildir=Path("unused"),
    max_attempts=3,
    retry_base_seconds=30,
    retry_max_seconds=600,
)


def relay(port: int, connections: int = 3, max_per_second: float = 0) -> SmtpTransport:
    return SmtpTransport(
        local_relay(port, timeout_seconds=5, connections=connections, max_per_second=max_per_second)
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
    # The envelope sender names the mail's row, signed (VERP).
    assert re.fullmatch(
        rf"qa\+bounce-{queued.id}-[0-9a-f]{{16}}@clusters\.example\.org", received.mail_from
    )
    assert received.rcpt_tos == ["ana@drvo.example.hr"]
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
    engine: AsyncEngine, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock, to=["a@org.example.bg", "gone@org.example.bg"])
    smtp_sink.refuse_rcpt["gone@org.example.bg"] = "550 5.1.1 no such user"
    with caplog.at_level(logging.INFO, logger="qa_mailer.send"):
        await (await sender(engine, relay(smtp_sink.port), clock)).deliver_due()
    done = await row(engine, queued.id)
    assert done.state == OutboxState.SENT and "gone@org.example.bg: 550" in (done.last_error or "")
    assert [r.rcpt_tos for r in smtp_sink.received] == [["a@org.example.bg"]]
    # Who took it and who refused it, with the relay's answer, is recorded per recipient.
    assert done.outcomes == {
        "a@org.example.bg": {"outcome": "accepted"},
        "gone@org.example.bg": {"outcome": "refused", "code": 550, "text": "5.1.1 no such user"},
    }
    assert done.refused == 1
    # The log says whom it reached and who refused it; it does not claim both got it.
    sent_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sent")]
    assert sent_lines == ["sent answer:A-1 to a@org.example.bg"]
    assert any(
        r.levelno == logging.WARNING and "refused for gone@org.example.bg: 550" in r.getMessage()
        for r in caplog.records
    )
    report = await status_of(engine, clock, tmp_path)
    assert "3 sent" not in report and "1 sent (1 partly refused), 0 failed" in report
    assert "answer:A-1" in report and "gone@org.example.bg: 550 5.1.1 no such user" in report


async def status_of(engine: AsyncEngine, clock: FakeClock, folder: Path) -> str:
    """What `qa-mailer status` prints (its config only names the sessions and countries)."""
    async with session_factory(engine)() as tx:
        report = await gather_status(tx, clock.now())
    return format_status(report, write_config(folder, f"sqlite+aiosqlite:///{folder}/unused.db"))


@pytest.mark.asyncio
async def test_a_4xx_for_one_recipient_retries_that_recipient_alone(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock, to=["a@org.example.bg", "busy@org.example.bg"])
    smtp_sink.refuse_rcpt["busy@org.example.bg"] = "452 4.2.2 mailbox full"
    outbox = await sender(engine, relay(smtp_sink.port), clock)
    assert await outbox.deliver_due() == 1
    waiting = await row(engine, queued.id)
    assert waiting.state == OutboxState.QUEUED and waiting.refused == 0
    assert waiting.outcomes["busy@org.example.bg"] == {
        "outcome": "deferred",
        "code": 452,
        "text": "4.2.2 mailbox full",
    }
    assert (waiting.next_attempt_at - clock.now()).total_seconds() == 30
    del smtp_sink.refuse_rcpt["busy@org.example.bg"]
    clock.advance(seconds=31)
    assert await outbox.deliver_due() == 1
    # The second attempt goes to the deferred recipient only: a got the mail once.
    assert [r.rcpt_tos for r in smtp_sink.received] == [
        ["a@org.example.bg"],
        ["busy@org.example.bg"],
    ]
    assert smtp_sink.received[0].raw == smtp_sink.received[1].raw
    done = await row(engine, queued.id)
    assert (done.state, done.attempts, done.refused, done.last_error) == (
        OutboxState.SENT,
        2,
        0,
        None,
    )
    assert all(o == {"outcome": "accepted"} for o in done.outcomes.values())


@pytest.mark.asyncio
async def test_a_4xx_that_never_clears_ends_as_a_refusal_after_max_attempts(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock, to=["a@org.example.bg", "busy@org.example.bg"])
    smtp_sink.refuse_rcpt["busy@org.example.bg"] = "452 4.2.2 mailbox full"
    outbox = await sender(engine, relay(smtp_sink.port), clock)
    for _ in range(OUTGOING.max_attempts):
        await outbox.deliver_due()
        clock.advance(seconds=3600)
    done = await row(engine, queued.id)
    assert (done.state, done.attempts, done.refused) == (OutboxState.SENT, 3, 1)
    assert done.outcomes["busy@org.example.bg"]["outcome"] == "refused"
    assert [r.rcpt_tos for r in smtp_sink.received] == [["a@org.example.bg"]]


@pytest.mark.asyncio
async def test_a_mail_every_recipient_refuses_fails(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock, to=["x@org.example.bg", "y@org.example.bg"])
    smtp_sink.refuse_rcpt["x@org.example.bg"] = "550 5.1.1 no such user"
    smtp_sink.refuse_rcpt["y@org.example.bg"] = "553 5.1.3 bad address"
    assert await (await sender(engine, relay(smtp_sink.port), clock)).deliver_due() == 0
    failed = await row(engine, queued.id)
    assert (failed.state, failed.attempts, failed.refused) == (OutboxState.FAILED, 1, 2)
    assert failed.last_error == (
        "refused for x@org.example.bg: 550 5.1.1 no such user; "
        "y@org.example.bg: 553 5.1.3 bad address"
    )
    assert smtp_sink.received == []


@pytest_asyncio.fixture
async def smtputf8_sink() -> AsyncIterator[SmtpSink]:
    """A relay that offers SMTPUTF8 (RFC 6531), as most large providers' do."""
    sink = SmtpSink()
    loop = asyncio.get_running_loop()
    sink.server = await loop.create_server(
        lambda: SMTP(sink, loop=loop, enable_SMTPUTF8=True), "127.0.0.1", 0
    )
    sink.port = int(sink.server.sockets[0].getsockname()[1])
    yield sink
    sink.server.close()
    await sink.server.wait_closed()


RU = "пётр@firm.example.ru"


@pytest.mark.asyncio
async def test_an_internationalised_recipient_goes_with_smtputf8_where_the_relay_offers_it(
    engine: AsyncEngine, smtputf8_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock, to=[f"Пётр <{RU}>", "ana@drvo.example.hr"])
    assert await (await sender(engine, relay(smtputf8_sink.port), clock)).deliver_due() == 1
    [received] = smtputf8_sink.received
    assert received.rcpt_tos == [RU, "ana@drvo.example.hr"]
    message = email.message_from_string(received.raw.decode("utf-8"), policy=email.policy.default)
    assert [(a.display_name, a.addr_spec) for a in message["To"].addresses] == [
        ("Пётр", RU),
        ("", "ana@drvo.example.hr"),
    ]
    assert (await row(engine, queued.id)).state == OutboxState.SENT


@pytest.mark.asyncio
async def test_without_smtputf8_that_mail_fails_alone_and_later_mail_goes_out(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    first = await queue_mail(engine, clock, to=[RU], ref="A-1")
    later = await queue_mail(engine, clock, ref="A-2")
    outbox = await sender(engine, relay(smtp_sink.port), clock)
    assert await outbox.deliver_due() == 1
    failed = await row(engine, first.id)
    assert (failed.state, failed.attempts) == (OutboxState.FAILED, 1)
    assert failed.last_error == f"the relay does not offer SMTPUTF8, needed for {RU}"
    assert (await row(engine, later.id)).state == OutboxState.SENT
    assert [r.rcpt_tos for r in smtp_sink.received] == [["ana@drvo.example.hr"]]


@pytest.mark.asyncio
async def test_the_maildir_transport_takes_an_internationalised_address(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock, to=[RU])
    await (await sender(engine, MaildirTransport(tmp_path / "outbox"), clock)).deliver_due()
    [name] = os.listdir(tmp_path / "outbox" / "new")
    stored = (tmp_path / "outbox" / "new" / name).read_bytes().decode("utf-8")
    assert f"X-Envelope-To: {RU}\r\n" in stored and f"To: {RU}\r\n" in stored
    assert (await row(engine, queued.id)).state == OutboxState.SENT


class DiesBeforeMarking(Sender):
    async def _record(self, results: list[Outcome]) -> None:
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
        async def _deliver(self, mail: ClaimedMail) -> Outcome:
            sent = await super()._deliver(mail)
            clock.advance(seconds=self.lease.total_seconds())  # the claim is not renewed
            return sent

    # One connection: the second mail would start after the first took all the lease.
    slow = await sender(engine, relay(smtp_sink.port, connections=1), clock, Slow)
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
    assert smtp_sink.message_ids() == sorted(q.rfc_message_id for q in queued)


@pytest.mark.asyncio
async def test_the_maildir_transport_keeps_the_envelope(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    clock = FakeClock()
    queued = await queue_mail(engine, clock)
    await (await sender(engine, MaildirTransport(tmp_path / "outbox"), clock)).deliver_due()
    [(_, stored)] = mailbox.Maildir(tmp_path / "outbox").items()
    message = email.message_from_bytes(stored.as_bytes(), policy=email.policy.default)
    assert message["X-Envelope-To"] == "ana@drvo.example.hr"
    assert str(message["Return-Path"]).startswith(f"<qa+bounce-{queued.id}-")
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


@pytest.mark.asyncio
async def test_a_command_that_sends_its_own_mail_says_it_was_partly_refused(
    engine: AsyncEngine, migrated_url: str, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        migrated_url,
        outgoing={"transport": "smtp"},
        smtp={"host": "127.0.0.1", "port": smtp_sink.port, "security": "none"},
    )
    # Queued in the past: the command sends by the real clock.
    past = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    queued = await queue_mail(engine, past, to=["a@org.example.bg", "gone@org.example.bg"])
    smtp_sink.refuse_rcpt["gone@org.example.bg"] = "550 5.1.1 no such user"
    said = await hand_over(engine, config, [queued.id])
    assert said.startswith("1 sent (1 partly refused) (`qa-mailer status` shows the outbox")


class EncodesBadly(SmtpTransport):
    """The relay as before, except that one address breaks the transport's own code, as
    aiosmtplib's UnicodeEncodeError did for a raw UTF-8 address before SMTPUTF8."""

    async def send(
        self, envelope_from: str, recipients: Sequence[str], raw: bytes, name: str
    ) -> Refusals:
        if "poison@org.example.bg" in recipients:
            "пётр".encode("ascii")
        return await super().send(envelope_from, recipients, raw, name)


@pytest.mark.asyncio
async def test_an_unexpected_error_fails_its_own_mail_counted_and_backed_off(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    poison = await queue_mail(engine, clock, to=["poison@org.example.bg"], ref="A-1")
    later = await queue_mail(engine, clock, ref="A-2")
    outbox = await sender(engine, EncodesBadly(relay(smtp_sink.port).config), clock)
    delays = []
    for _ in range(OUTGOING.max_attempts):
        await outbox.deliver_due()
        current = await row(engine, poison.id)
        delays.append((current.next_attempt_at - clock.now()).total_seconds())
        clock.advance(seconds=3600)
    assert (await row(engine, later.id)).state == OutboxState.SENT
    assert [r.rcpt_tos for r in smtp_sink.received] == [["ana@drvo.example.hr"]]
    assert delays[:2] == [30, 60]
    failed = await row(engine, poison.id)
    assert (failed.state, failed.attempts) == (OutboxState.FAILED, OUTGOING.max_attempts)
    assert (failed.last_error or "").startswith("UnicodeEncodeError: 'ascii' codec")


@pytest.mark.asyncio
async def test_without_verp_the_envelope_sender_is_the_plain_address(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    await queue_mail(engine, clock)
    sessions = session_factory(engine)
    plain = replace(OUTGOING, verp=False)
    workers = await registered(sessions, clock)
    assert await Sender(sessions, relay(smtp_sink.port), plain, clock, workers).deliver_due() == 1
    [received] = smtp_sink.received
    assert received.mail_from == QA


@pytest.mark.asyncio
async def test_a_sender_asked_to_stop_puts_back_what_it_has_not_tried(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    # A stop lets the mail in flight finish; it used to go on through the whole backlog,
    # which a grace period of 10 s then cut off mid-send (resent later, once its claim ran out).
    import asyncio
    import time

    clock = FakeClock()
    queued = [await queue_mail(engine, clock, ref=f"A-{n}") for n in range(120)]
    paced = await sender(engine, relay(smtp_sink.port, connections=1, max_per_second=40), clock)
    stop = asyncio.Event()
    running = asyncio.create_task(paced.run(stop))
    await wait_until(
        lambda: asyncio.sleep(0, len(smtp_sink.received) >= 5), what="the first mails sent"
    )
    stop.set()
    asked = time.monotonic()
    await asyncio.wait_for(running, 10)
    assert time.monotonic() - asked < 1.5  # not the 3 s the rest would take at 40 a second
    sent = len(smtp_sink.received)
    assert sent < len(queued)
    rows = [await row(engine, mail.id) for mail in queued]
    assert sum(r.state == OutboxState.SENT for r in rows) == sent
    waiting = [r for r in rows if r.state != OutboxState.SENT]
    # Back in the queue, free for any process, and not counted as an attempt.
    assert {(r.state, r.attempts, r.claimed_by) for r in waiting} == {(OutboxState.QUEUED, 0, None)}

    again = await sender(engine, relay(smtp_sink.port), clock)
    assert await again.deliver_due() == len(queued) - sent
    assert smtp_sink.message_ids() == sorted(q.rfc_message_id for q in queued)  # each once
