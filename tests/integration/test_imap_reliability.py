"""The IMAP poller under the conditions that stalled or hurt it: mail announced in the middle
of a round, a server restart, a crash between flagging and moving, and mail too large to hold.

Each test runs against a real Dovecot. Where a race has to be made to happen, a subclass of
the poller does the racing thing (a delivery from a second connection) at the exact point in
the round where it once went wrong; the poller itself is unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import selectinload

from qa_mailer import admin
from qa_mailer.clock import SystemClock
from qa_mailer.config import ImapConfig
from qa_mailer.db import InboundMessage, MessageState
from qa_mailer.db.engine import session_factory
from qa_mailer.ingest.imap import FetchLimits, ImapPoller
from qa_mailer.ingest.imap_connection import ImapConnection
from qa_mailer.ingest.imap_fetch import uid_set
from qa_mailer.ingest.store import MessageStore
from tests.helpers import make_mail, registered, wait_until
from tests.servers.dovecot import DovecotServer, ImapUser, imap_config_for
from tests.servers.imap_client import append, flags_in, inbox_empty

# Dovecot tells an idling client about new mail about 0.5 s after it lands (shared/NOTES.md).
# A message the poller missed would wait for the IDLE renewal, 60 s after IDLE began: the
# tests wait for a message up to NOT_RENEWED, then check it was stored within PUSHED_WITHIN
# of its delivery, which leaves room for a loaded machine and far less than the renewal.
PUSHED_WITHIN = 10.0
NOT_RENEWED = 45.0


@pytest.fixture
def imap_config(
    dovecot: DovecotServer, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> ImapConfig:
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", imap_user.password)
    return imap_config_for(dovecot, imap_user)


@asynccontextmanager
async def polling(
    poller_of: type[ImapPoller],
    engine: AsyncEngine,
    config: ImapConfig,
    limits: FetchLimits | None = None,
) -> AsyncIterator[ImapPoller]:
    sessions = session_factory(engine)
    workers = await registered(sessions, SystemClock())
    store = MessageStore(sessions, SystemClock(), lambda: None)
    poller = poller_of(config, store, sessions, workers, limits=limits or FetchLimits())
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        yield poller
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def subjects(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as session:
        found = await session.scalars(select(InboundMessage.subject).order_by(InboundMessage.id))
        return [subject or "" for subject in found]


def mail(subject: str, body: str = "") -> bytes:
    return make_mail(sender="ana@drvo.example.hr", subject=subject, body=body or f"about {subject}")


async def _has(engine: AsyncEngine, subject: str) -> bool:
    return subject in await subjects(engine)


# Item 9: mail announced in a FETCH, STORE or MOVE response must not wait for the IDLE renewal.


@pytest.mark.asyncio
async def test_mail_arriving_while_the_poller_marks_is_fetched_at_once(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    delivered: list[float] = []

    class MailArrivesWhileMarking(ImapPoller):
        async def _mark(self, connection: ImapConnection, uids: Sequence[int]) -> None:
            if uids and not delivered:
                # Delivered from a second connection before our STORE and MOVE: Dovecot
                # announces it in their responses (* 2 EXISTS), and never again in IDLE.
                await append(dovecot, imap_user, mail("late"))
                delivered.append(time.monotonic())
            await super()._mark(connection, uids)

    await append(dovecot, imap_user, mail("first"))
    async with polling(MailArrivesWhileMarking, engine, imap_config):
        await wait_until(lambda: _has(engine, "first"), what="the first message stored")
        await pushed(
            lambda: _has(engine, "late"),
            delivered,
            "the message announced during STORE/MOVE, before the IDLE renewal",
        )
    assert await subjects(engine) == ["first", "late"]


@pytest.mark.asyncio
async def test_mail_arriving_just_before_idle_starts_is_fetched_at_once(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    delivered: list[float] = []

    class MailArrivesBeforeIdle(ImapPoller):
        async def _idle(self, connection: ImapConnection, stop: asyncio.Event) -> None:
            if not delivered:
                # After the round's last command and before IDLE: the server has told us
                # nothing yet, so the IDLE command itself must bring the news.
                await append(dovecot, imap_user, mail("between"))
                delivered.append(time.monotonic())
            await super()._idle(connection, stop)

    async with polling(MailArrivesBeforeIdle, engine, imap_config):
        await pushed(
            lambda: _has(engine, "between"), delivered, "the message delivered just before IDLE"
        )


@pytest.mark.asyncio
async def test_mail_waiting_at_start_up_and_arriving_during_a_big_fetch_is_all_fetched(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    delivered: list[float] = []

    class MailArrivesWhileFetching(ImapPoller):
        async def _fetch(
            self, connection: ImapConnection, uids: Sequence[int]
        ) -> list[tuple[int, bytes]]:
            if len(delivered) < 3:
                await append(dovecot, imap_user, mail(f"during fetch {len(delivered) + 1}"))
                delivered.append(time.monotonic())
            return await super()._fetch(connection, uids)

    await append(dovecot, imap_user, *(mail(f"waiting {n}") for n in range(10)))
    async with polling(MailArrivesWhileFetching, engine, imap_config):
        await pushed(
            lambda: _count_at_least(engine, 13),
            delivered,
            "ten waiting messages and the three delivered during fetches",
        )
        await wait_until(lambda: inbox_empty(dovecot, imap_user), what="INBOX emptied")
    assert len(await subjects(engine)) == 13


@pytest.mark.asyncio
async def test_mail_flagged_but_not_moved_before_a_crash_is_moved_on_the_next_connection(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    class KilledBetweenStoreAndMove(ImapPoller):
        async def _mark(self, connection: ImapConnection, uids: Sequence[int]) -> None:
            if uids:
                keyword = f"({imap_config.processed_keyword})"
                client = connection.client
                await connection.command(client.uid("store", uid_set(uids), "+FLAGS", keyword))
                raise ConnectionResetError("the process was killed between STORE and MOVE")

    await append(dovecot, imap_user, mail("a"), mail("b"))
    async with polling(KilledBetweenStoreAndMove, engine, imap_config):
        await wait_until(lambda: _count_at_least(engine, 2), what="both stored")
    flags = await flags_in(dovecot, imap_user)
    assert len(flags) == 2 and all(imap_config.processed_keyword in f for f in flags)
    async with polling(ImapPoller, engine, imap_config):
        await wait_until(lambda: inbox_empty(dovecot, imap_user), what="the flagged ones moved")
    assert len(await flags_in(dovecot, imap_user, "Processed")) == 2
    assert await subjects(engine) == ["a", "b"]


# Item 10: a server restart is noticed at once and ingest resumes within seconds.


@pytest.fixture
def own_dovecot() -> Iterator[DovecotServer]:
    """A Dovecot of this test's own, since the test stops and restarts it."""
    server = DovecotServer.start_new()
    yield server
    server.stop()


@pytest.mark.asyncio
async def test_a_server_restart_is_noticed_at_once_and_ingest_resumes_within_seconds(
    engine: AsyncEngine,
    own_dovecot: DovecotServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="qa_mailer.ingest.imap")
    user = own_dovecot.add_user()
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", user.password)
    # The shipped timeout: the poller used to wait on the dead connection for twice this.
    config = imap_config_for(own_dovecot, user, timeout_seconds=30)
    async with polling(ImapPoller, engine, config) as poller:
        await append(own_dovecot, user, mail("before the restart"))
        await wait_until(lambda: _has(engine, "before the restart"), what="stored before")
        await asyncio.wait_for(poller.connected.wait(), 10)

        await asyncio.to_thread(own_dovecot.shut_down)
        # Seconds, where the dead connection used to hold the poller for twice its timeout.
        await wait_until(
            lambda: _disconnected(poller), timeout=10, what="the poller noticed the server left"
        )
        await asyncio.sleep(1.0)  # a few reconnection attempts fail meanwhile
        await asyncio.to_thread(own_dovecot.start_again)
        await append(own_dovecot, user, mail("after the restart"))
        # The reconnection's back-off (up to 5 s by now) and a login on a loaded machine.
        await wait_until(
            lambda: _has(engine, "after the restart"),
            timeout=20,
            what="mail stored after the server came back",
        )
    records = [r for r in caplog.records if r.name == "qa_mailer.ingest.imap"]
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    back_again = [r for r in records if "connected again" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert len(back_again) == 1 and back_again[0].levelno == logging.INFO


# Item 11: the size limit, and memory bounded while fetching.


@pytest.mark.asyncio
async def test_an_oversized_message_is_recorded_by_its_headers_and_moved(
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    imap_config: ImapConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="qa_mailer.ingest.imap")
    limit = 64 * 1024
    huge = mail("huge", body="A line of a long attachment, repeated.\n" * 8000)
    assert len(huge) > 4 * limit
    await append(dovecot, imap_user, mail("small before"), huge, mail("small after"))
    async with polling(ImapPoller, engine, imap_config, FetchLimits(max_message_bytes=limit)):
        await wait_until(lambda: _count_at_least(engine, 3), what="all three recorded")
        await wait_until(lambda: inbox_empty(dovecot, imap_user), what="INBOX emptied")
    async with session_factory(engine)() as session:
        rows = {
            row.subject: row
            for row in await session.scalars(
                select(InboundMessage).options(selectinload(InboundMessage.raw_mail))
            )
        }
    big = rows["huge"]
    assert big.state == MessageState.QUARANTINED
    assert big.reason is not None and big.reason.startswith("too large: ")
    assert "limit 0.1 MB" in big.reason and "Processed" in big.reason
    assert big.size >= len(huge)  # the size the server reported, not what we kept
    assert b"Subject: huge" in big.raw_mail.raw and b"repeated" not in big.raw_mail.raw
    assert len(big.raw_mail.raw) < 2048
    assert rows["small before"].state == rows["small after"].state == MessageState.RECEIVED
    assert len(await flags_in(dovecot, imap_user, "Processed")) == 3
    warned = [
        r for r in caplog.records if r.levelno == logging.WARNING and "too large" in r.getMessage()
    ]
    assert len(warned) == 1 and big.rfc_message_id in warned[0].getMessage()
    # Releasing it would answer an empty question: it stays quarantined.
    with pytest.raises(admin.HeadersOnly, match="only their headers are kept"):
        await admin.release_messages(engine, [big.id], MessageState.QUARANTINED)
    assert await admin.release_messages(engine, None, MessageState.QUARANTINED) == []
    assert [m.id for m in await admin.list_messages(engine, MessageState.QUARANTINED)] == [big.id]


@pytest.mark.asyncio
async def test_a_fetch_batch_holds_no_more_than_its_byte_budget(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    batches: list[list[int]] = []

    class RecordsBatches(ImapPoller):
        async def _fetch(
            self, connection: ImapConnection, uids: Sequence[int]
        ) -> list[tuple[int, bytes]]:
            fetched = await super()._fetch(connection, uids)
            batches.append([len(raw) for _, raw in fetched])
            return fetched

    budget = 70_000
    body = "Thirty kilobytes of a question, more or less.\n" * 650
    await append(dovecot, imap_user, *(mail(f"big {n}", body) for n in range(6)))
    limits = FetchLimits(max_message_bytes=1_000_000, batch_bytes=budget)
    async with polling(RecordsBatches, engine, imap_config, limits):
        await wait_until(lambda: _count_at_least(engine, 6), what="six stored")
    assert sum(len(batch) for batch in batches) == 6
    assert all(sum(batch) <= budget for batch in batches), batches
    assert max(len(batch) for batch in batches) == 2  # 2 x 30 kB fit, 3 do not


async def pushed(stored: Callable[[], Awaitable[bool]], delivered: list[float], what: str) -> None:
    """Wait until ``stored``, then check it came soon after the last delivery, not by renewal."""
    await wait_until(stored, timeout=NOT_RENEWED, what=what)
    assert delivered, "the mail was never delivered"
    took = time.monotonic() - delivered[-1]
    assert took < PUSHED_WITHIN, f"{what}: stored {took:.1f} s after its delivery"


async def _count_at_least(engine: AsyncEngine, n: int) -> bool:
    async with session_factory(engine)() as session:
        count = await session.scalar(select(func.count()).select_from(InboundMessage))
    return int(count or 0) >= n


async def _disconnected(poller: ImapPoller) -> bool:
    return not poller.connected.is_set()
