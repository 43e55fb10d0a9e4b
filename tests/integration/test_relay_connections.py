"""The sender's kept relay connections, its pace and its answer to a relay that is away,
against an aiosmtpd relay: connections bounded and reused, replaced when the relay drops
them, a 421 or 451 backing off the batch, and the relay's return waking what waited."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiosmtpd.smtp import SMTP
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import OutboxMail, OutboxState
from qa_mailer.db.engine import session_factory
from qa_mailer.send.connections import RateLimit
from qa_mailer.send.record import Outcome
from qa_mailer.send.sender import UNRECORDED_PER_CONNECTION, RelayState, Sender
from tests.helpers import FakeClock
from tests.integration.test_sender import queue_mail, relay, sender
from tests.servers.ports import free_port
from tests.servers.smtp_sink import SmtpSink


async def all_rows(engine: AsyncEngine) -> list[OutboxMail]:
    async with session_factory(engine)() as tx:
        return list(await tx.scalars(select(OutboxMail).order_by(OutboxMail.id)))


@pytest.mark.asyncio
async def test_a_backlog_goes_over_at_most_the_configured_connections_each_reused(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = [await queue_mail(engine, clock, ref=f"A-{n}") for n in range(60)]
    transport = relay(smtp_sink.port, connections=2)
    assert await (await sender(engine, transport, clock)).deliver_due() == 60
    assert smtp_sink.message_ids() == sorted(q.rfc_message_id for q in queued)
    # Seen from the relay: two connections at most, each carrying many mails.
    peers = [r.peer for r in smtp_sink.received]
    assert 1 <= len(set(peers)) <= 2 and transport.connections.opened == len(set(peers))
    assert all(row.state == OutboxState.SENT for row in await all_rows(engine))


class _Watched(Sender):
    """A sender that notes, at each write of outcomes, how many mails the relay holds that
    were not yet recorded, and how many outcomes the write carries."""

    sink: SmtpSink
    recorded = 0
    ahead: list[int]
    writes: list[int]

    async def _record(self, results: list[Outcome]) -> None:
        self.ahead.append(len(self.sink.received) - self.recorded)
        self.writes.append(len(results))
        await super()._record(results)
        self.recorded += len(results)


@pytest.mark.asyncio
async def test_outcomes_are_written_together_and_few_mails_ever_wait_for_theirs(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    # Each write carries whatever outcomes came in meanwhile, and a crash can resend at most
    # the mails sent and not yet written: UNRECORDED_PER_CONNECTION per connection.
    clock = FakeClock()
    for n in range(60):
        await queue_mail(engine, clock, ref=f"A-{n}")
    outbox = await sender(engine, relay(smtp_sink.port, connections=3), clock, _Watched)
    assert isinstance(outbox, _Watched)
    outbox.sink, outbox.ahead, outbox.writes = smtp_sink, [], []
    assert await outbox.deliver_due() == 60
    assert sum(outbox.writes) == 60
    assert max(outbox.ahead) <= UNRECORDED_PER_CONNECTION * 3, outbox.ahead
    assert len(outbox.writes) < 60 and max(outbox.writes) > 1, outbox.writes


@pytest.mark.asyncio
async def test_a_connection_the_relay_dropped_is_replaced_and_the_mail_goes_once(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    first = await queue_mail(engine, clock, ref="A-1")
    transport = relay(smtp_sink.port, connections=1)
    outbox = await sender(engine, transport, clock)
    assert await outbox.deliver_due(keep_connections=True) == 1
    smtp_sink.drop_connections()
    second = await queue_mail(engine, clock, ref="A-2")
    assert await outbox.deliver_due() == 1
    assert smtp_sink.message_ids() == sorted([first.rfc_message_id, second.rfc_message_id])
    assert transport.connections.opened == 2
    assert smtp_sink.received[0].peer != smtp_sink.received[1].peer


@pytest.mark.asyncio
async def test_a_kept_connection_that_the_relay_closes_at_the_next_mail_is_replaced_at_once(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    # The relay gave up on the idle session just as the next mail started: it answers
    # MAIL FROM with 421 and closes. Nothing of the mail was taken, so it goes at once over
    # a new connection, counted as one attempt.
    clock = FakeClock()
    await queue_mail(engine, clock, ref="A-1")
    transport = relay(smtp_sink.port, connections=1)
    outbox = await sender(engine, transport, clock)
    assert await outbox.deliver_due(keep_connections=True) == 1
    second = await queue_mail(engine, clock, ref="A-2")
    smtp_sink.refuse_mail_once = "421 4.4.2 Idle too long, closing"
    assert await outbox.deliver_due() == 1
    [row] = [r for r in await all_rows(engine) if r.id == second.id]
    assert (row.state, row.attempts) == (OutboxState.SENT, 1)
    assert transport.connections.opened == 2 and len(smtp_sink.received) == 2


@pytest.mark.asyncio
async def test_a_kept_connection_is_used_for_the_next_pass(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    transport = relay(smtp_sink.port, connections=1)
    outbox = await sender(engine, transport, clock)
    for n in range(3):
        await queue_mail(engine, clock, ref=f"A-{n}")
        assert await outbox.deliver_due(keep_connections=True) == 1
    await transport.close()
    assert transport.connections.opened == 1
    assert len({r.peer for r in smtp_sink.received}) == 1


@pytest.mark.asyncio
async def test_a_421_backs_off_the_whole_batch_and_tries_one_mail_per_connection(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    queued = [await queue_mail(engine, clock, ref=f"A-{n}") for n in range(10)]
    smtp_sink.refuse = "421 4.3.2 Service shutting down"
    outbox = await sender(engine, relay(smtp_sink.port, connections=1), clock)
    assert await outbox.deliver_due() == 0
    # One mail met the 421; the nine others were not tried and wait with it, uncounted.
    assert smtp_sink.refused == 1
    rows = await all_rows(engine)
    assert [r.attempts for r in rows] == [1] + [0] * 9
    assert all(r.state == OutboxState.QUEUED and "421" in (r.last_error or "") for r in rows)
    assert {r.next_attempt_at for r in rows} == {clock.now() + timedelta(seconds=30)}
    smtp_sink.refuse = None
    assert await outbox.deliver_due() == 0, "they wait for the backoff"
    clock.advance(seconds=30)
    assert await outbox.deliver_due() == 10
    assert smtp_sink.message_ids() == sorted(q.rfc_message_id for q in queued)


@pytest.mark.asyncio
async def test_the_relays_return_wakes_every_mail_that_waited_for_it(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    start = clock.now()
    outbox = await sender(engine, relay(smtp_sink.port), clock)
    smtp_sink.refuse = "451 4.3.0 Try again later"
    early = [await queue_mail(engine, clock, ref=f"E-{n}") for n in range(40)]
    await outbox.deliver_due()
    clock.advance(seconds=30)
    await outbox.deliver_due()  # the early mails fail again: they now wait 60 s
    clock.advance(seconds=10)
    late = [await queue_mail(engine, clock, ref=f"L-{n}") for n in range(40)]
    await outbox.deliver_due()  # the late mails fail for the first time: they wait 30 s
    waiting = {r.id: r.next_attempt_at for r in await all_rows(engine)}
    assert all(r.state == OutboxState.QUEUED for r in await all_rows(engine))
    early_ids = {q.id for q in early}
    assert {waiting[i] for i in early_ids} == {start + timedelta(seconds=90)}
    assert {t for i, t in waiting.items() if i not in early_ids} == {start + timedelta(seconds=70)}
    refused_while_away = smtp_sink.refused

    # The relay is back; the late mails' time comes first.
    smtp_sink.refuse = None
    clock.advance(seconds=30)
    back = clock.now()
    assert back == start + timedelta(seconds=70)
    assert await outbox.deliver_due() == 80
    rows = await all_rows(engine)
    assert all(r.state == OutboxState.SENT for r in rows)
    # The early mails went at the late mails' time, not at the end of their own backoff.
    assert {r.sent_at for r in rows} == {back}
    assert all(back < waiting[r.id] for r in rows if r.id in early_ids)
    # Every mail reached the relay exactly once; each wait cost the relay one refusal per
    # connection, not one per mail.
    assert smtp_sink.message_ids() == sorted(q.rfc_message_id for q in early + late)
    assert refused_while_away <= 3 * 3


@pytest.mark.asyncio
async def test_a_failure_beside_successes_keeps_its_backoff(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    # A recipient's mailbox that is full says nothing about the relay: its mail is not
    # woken by the other mails that go through.
    clock = FakeClock()
    full = await queue_mail(engine, clock, to=["full@org.example.bg"], ref="A-0")
    smtp_sink.refuse_rcpt["full@org.example.bg"] = "452 4.2.2 mailbox full"
    outbox = await sender(engine, relay(smtp_sink.port), clock)
    await outbox.deliver_due()
    for n in range(1, 5):
        await queue_mail(engine, clock, ref=f"A-{n}")
    assert await outbox.deliver_due() == 4
    [row] = [r for r in await all_rows(engine) if r.id == full.id]
    assert (row.state, row.next_attempt_at) == (
        OutboxState.QUEUED,
        clock.now() + timedelta(seconds=30),
    )


class FakeTime:
    """A monotonic clock that moves only when a sleep asks it to."""

    def __init__(self) -> None:
        self.now = 0.0
        self.wakes: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.wakes.append(self.now + seconds)
        self.now = max(self.now, self.now + seconds)


@pytest.mark.asyncio
async def test_max_per_second_spaces_the_mails_across_all_connections(
    engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    clock = FakeClock()
    for n in range(10):
        await queue_mail(engine, clock, ref=f"A-{n}")
    transport = relay(smtp_sink.port, connections=3, max_per_second=5)
    time = FakeTime()
    # The configured rate, on a clock the test moves.
    transport.rate = RateLimit(transport.config.max_per_second, time.monotonic, time.sleep)
    assert await (await sender(engine, transport, clock)).deliver_due() == 10
    assert len(smtp_sink.received) == 10
    # The first goes at once, each later one 0.2 s after the one before it, whichever
    # connection carries it.
    assert sorted(round(t, 6) for t in time.wakes) == [round(0.2 * k, 6) for k in range(1, 10)]


@pytest.mark.asyncio
async def test_without_a_rate_nothing_waits() -> None:
    time = FakeTime()
    limit = RateLimit(0, time.monotonic, time.sleep)
    for _ in range(5):
        await limit.wait()
    assert time.wakes == []


@pytest.mark.asyncio
async def test_a_relay_that_could_not_be_reached_is_tried_without_spending_attempts(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock()
    port = free_port()
    queued = [await queue_mail(engine, clock, ref=f"A-{n}") for n in range(20)]
    outbox = await sender(engine, relay(port), clock)
    assert await outbox.deliver_due() == 0  # nothing listens on the port
    assert outbox.relay == RelayState.UNREACHABLE
    before = {r.id: (r.attempts, r.next_attempt_at) for r in await all_rows(engine)}
    assert sum(attempts for attempts, _ in before.values()) == 3, "one per connection"
    assert await outbox.probe_relay() == 0, "still away"
    assert {r.id: (r.attempts, r.next_attempt_at) for r in await all_rows(engine)} == before

    sink = SmtpSink()
    loop = asyncio.get_running_loop()
    sink.server = await loop.create_server(lambda: SMTP(sink, loop=loop), "127.0.0.1", port)
    try:
        # The relay is back: the connection that opens wakes every waiting mail.
        assert await outbox.probe_relay() == 20
        assert outbox.relay == RelayState.TAKING
        assert await outbox.deliver_due() == 20
    finally:
        sink.server.close()
        await sink.server.wait_closed()
    rows = await all_rows(engine)
    assert all(r.state == OutboxState.SENT and r.sent_at == clock.now() for r in rows)
    assert all(r.sent_at < before[r.id][1] for r in rows)
    assert sink.message_ids() == sorted(q.rfc_message_id for q in queued)
