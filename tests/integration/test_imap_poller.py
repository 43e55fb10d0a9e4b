"""The IMAP poller against a real Dovecot: IDLE, resume after restart, resync, marking, TLS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta

import aioimaplib
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.clock import SystemClock
from qa_mailer.config import ImapConfig
from qa_mailer.db import ImapCursor, InboundMessage, Lease
from qa_mailer.db.engine import session_factory
from qa_mailer.ingest import imap_connection
from qa_mailer.ingest.imap import ImapPoller
from qa_mailer.ingest.store import MessageStore
from qa_mailer.workers import Timing, Workers
from tests.helpers import make_mail, registered, wait_until
from tests.servers.dovecot import DovecotServer, ImapUser, doveadm, imap_config_for
from tests.servers.imap_client import append, flags_in, inbox_empty


@pytest.fixture
def imap_config(
    dovecot: DovecotServer, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> ImapConfig:
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", imap_user.password)
    return imap_config_for(dovecot, imap_user)


@asynccontextmanager
async def polling(engine: AsyncEngine, config: ImapConfig) -> AsyncIterator[ImapPoller]:
    sessions = session_factory(engine)
    workers = await registered(sessions, SystemClock())
    poller = ImapPoller(
        config, MessageStore(sessions, SystemClock(), lambda: None), sessions, workers
    )
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        yield poller
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def stored(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


def mails(*subjects: str) -> list[bytes]:
    return [make_mail(sender="ana@drvo.example.hr", subject=s, body=f"about {s}") for s in subjects]


@pytest.mark.asyncio
async def test_waiting_and_new_mail_is_stored_once_then_moved(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    await append(dovecot, imap_user, *mails("a", "b", "c", "d", "e", "f"))
    async with polling(engine, imap_config) as poller:
        await wait_until(lambda: _at_least(engine, 6), what="six waiting messages stored")
        await asyncio.wait_for(poller.connected.wait(), 10)
        await append(dovecot, imap_user, *mails("g"))
        await wait_until(lambda: _at_least(engine, 7), what="the new message pushed by IDLE")
        await wait_until(lambda: inbox_empty(dovecot, imap_user), what="INBOX emptied")
    processed = await flags_in(dovecot, imap_user, "Processed")
    assert len(processed) == 7
    # Marked with our keyword; never \Seen (a human reading the mailbox owns that flag).
    assert all("$QaMailerStored" in f and "\\Seen" not in f for f in processed)
    async with session_factory(engine)() as session:
        rows = list(await session.scalars(select(InboundMessage).order_by(InboundMessage.imap_uid)))
        cursor = (await session.scalars(select(ImapCursor))).one()
    assert [r.imap_uid for r in rows] == list(range(1, 8))
    assert {r.source for r in rows} == {"imap"} and cursor.last_uid == 7


@pytest.mark.asyncio
async def test_a_restart_resumes_from_the_cursor(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    keyword_mode = replace(imap_config, processed="keyword")
    await append(dovecot, imap_user, *mails("a", "b"))
    async with polling(engine, keyword_mode):
        await wait_until(lambda: _at_least(engine, 2), what="first two stored")
    await append(dovecot, imap_user, *mails("c"))
    async with polling(engine, keyword_mode) as poller:
        await wait_until(lambda: _at_least(engine, 3), what="the third stored")
        await asyncio.wait_for(poller.connected.wait(), 10)
    assert await stored(engine) == 3
    # Keyword mode leaves every message in place, flagged.
    flags = await flags_in(dovecot, imap_user)
    assert len(flags) == 3 and all("$QaMailerStored" in f for f in flags)


@pytest.mark.asyncio
async def test_a_new_uidvalidity_resyncs_without_duplicates(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    keyword_mode = replace(imap_config, processed="keyword")
    await append(dovecot, imap_user, *mails("a", "b", "c"))
    async with polling(engine, keyword_mode):
        await wait_until(lambda: _at_least(engine, 3), what="three stored")
    doveadm(dovecot, "mailbox", "update", "-u", imap_user.name, "--uid-validity", "4242", "INBOX")
    await append(dovecot, imap_user, *mails("d"))
    async with polling(engine, keyword_mode):
        await wait_until(lambda: _at_least(engine, 4), what="the new one stored after the resync")
        await wait_until(
            lambda: _cursor_validity(engine, 4242), what="cursor moved to the new UIDVALIDITY"
        )
    assert await stored(engine) == 4


@pytest.mark.asyncio
async def test_stored_but_unmarked_messages_are_marked_on_the_next_connection(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    class CrashesBeforeMarking(ImapPoller):
        async def _mark(self, client: object, uids: object) -> None:  # type: ignore[override]
            raise ConnectionResetError("the service died between commit and marking")

    await append(dovecot, imap_user, *mails("a", "b"))
    sessions = session_factory(engine)
    crashing = CrashesBeforeMarking(
        imap_config,
        MessageStore(sessions, SystemClock(), lambda: None),
        sessions,
        await registered(sessions, SystemClock()),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(crashing.run(stop))
    await wait_until(lambda: _at_least(engine, 2), what="messages committed before the crash")
    stop.set()
    await asyncio.wait_for(task, 20)
    assert len(await flags_in(dovecot, imap_user)) == 2  # still in INBOX, unmarked
    async with polling(engine, imap_config):
        await wait_until(lambda: inbox_empty(dovecot, imap_user), what="the leftovers moved")
    assert await stored(engine) == 2
    assert len(await flags_in(dovecot, imap_user, "Processed")) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_and_starttls(
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    imap_config: ImapConfig,
    security: str,
) -> None:
    port = dovecot.tls_port if security == "tls" else dovecot.port
    secure = replace(imap_config, security=security, port=port, ca_file=dovecot.cert)  # type: ignore[arg-type]
    await append(dovecot, imap_user, *mails("secret"))
    async with polling(engine, secure):
        await wait_until(lambda: _at_least(engine, 1), what="stored over TLS")
    logins = await dovecot.logged("Login: user=<" + imap_user.name, count=2)
    # The first login is the test's own plain APPEND; every one after it is the poller's.
    assert all("TLS" in line for line in logins[1:]), logins


@pytest.mark.asyncio
async def test_a_tls_connection_given_up_lets_its_socket_go_at_once(
    dovecot: DovecotServer, imap_config: ImapConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Closing TLS politely waits for the server's close_notify, up to 30 s, with the socket
    # open: an event loop that ended first (a command's, a test's) left the socket to the
    # garbage collector, whose ResourceWarning failed whichever test it came in. A connection
    # we give up (here: the login refused) is closed without a word, its socket at once.
    secure = replace(imap_config, security="tls", port=dovecot.tls_port, ca_file=dovecot.cert)
    sockets: list[object] = []
    real_close = imap_connection.close

    def close(client: aioimaplib.IMAP4) -> None:
        sockets.append(client.protocol.transport.get_extra_info("socket"))
        real_close(client)

    monkeypatch.setattr(imap_connection, "close", close)
    monkeypatch.setenv("QA_TEST_WRONG_PASSWORD", "wrong")
    with pytest.raises(imap_connection.ImapLoginRefused):
        await imap_connection.connect(replace(secure, password_env="QA_TEST_WRONG_PASSWORD"))
    [closed] = sockets
    assert closed is not None
    for _ in range(3):
        await asyncio.sleep(0)
    assert closed.fileno() == -1  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_an_untrusted_certificate_is_refused(
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    imap_config: ImapConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    unverified = replace(imap_config, security="tls", port=dovecot.tls_port, ca_file=None)
    await append(dovecot, imap_user, *mails("x"))
    async with polling(engine, unverified) as poller:
        await logged(caplog, "certificate not trusted")
        assert not poller.connected.is_set()
    assert await stored(engine) == 0


@pytest.mark.asyncio
async def test_without_idle_it_polls(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    async with polling(engine, replace(imap_config, use_idle=False)) as poller:
        await asyncio.wait_for(poller.connected.wait(), 10)
        await append(dovecot, imap_user, *mails("polled"))
        await wait_until(lambda: _at_least(engine, 1), what="a polled message")


@pytest.mark.asyncio
async def test_a_refused_login_retries_instead_of_crashing(
    engine: AsyncEngine,
    imap_config: ImapConfig,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", "wrong")
    async with polling(engine, imap_config) as poller:
        await logged(caplog, "login refused")
        assert not poller.connected.is_set()


async def _leases(engine: AsyncEngine) -> list[tuple[int, datetime, datetime]]:
    """Each lease's holder, when it was taken and when it runs out."""
    async with session_factory(engine)() as session:
        rows = await session.execute(select(Lease.worker_id, Lease.acquired_at, Lease.expires_at))
        return [(worker, acquired, expires) for worker, acquired, expires in rows]


async def logged(caplog: pytest.LogCaptureFixture, words: str) -> None:
    """Wait until the service logs ``words``: the poller has tried and failed."""
    await wait_until(
        lambda: asyncio.sleep(0, any(words in r.getMessage() for r in caplog.records)),
        what=f"{words!r} in the log",
    )


async def _at_least(engine: AsyncEngine, n: int) -> bool:
    return await stored(engine) >= n


async def _cursor_validity(engine: AsyncEngine, value: int) -> bool:
    async with session_factory(engine)() as session:
        return await session.scalar(select(ImapCursor.uidvalidity)) == value


async def two_processes(
    engine: AsyncEngine, config: ImapConfig, timing: Timing
) -> tuple[list[Workers], list[ImapPoller]]:
    """Two registered workers with a poller each for one mailbox, as two processes have."""
    sessions = session_factory(engine)
    workers, pollers = [], []
    for _ in range(2):
        worker = Workers(sessions, SystemClock(), timing)
        await worker.register(["intake"])
        workers.append(worker)
        pollers.append(
            ImapPoller(
                config, MessageStore(sessions, SystemClock(), lambda: None), sessions, worker
            )
        )
    return workers, pollers


@pytest.mark.asyncio
async def test_one_process_polls_a_mailbox_and_another_takes_over_when_it_dies(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    # A lease outlives fifteen heartbeats: a slow write on a loaded machine is not a death.
    timing = Timing(heartbeat_seconds=0.2, dead_after_seconds=3.0)
    workers, pollers = await two_processes(engine, imap_config, timing)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(poller.run(stop)) for poller in pollers]
    beats = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        await wait_until(lambda: _any_connected(pollers), what="one poller connected")
        await asyncio.sleep(1.5)  # several heartbeats: the other one still stands by
        assert sum(p.connected.is_set() for p in pollers) == 1
        holder = 0 if pollers[0].connected.is_set() else 1

        # The holder dies: no more heartbeats, no clean-up (its lease is not given back),
        # its connection just goes.
        async def killed(name: str) -> None:
            return None

        workers[holder].release = killed  # type: ignore[method-assign]
        beats[holder].cancel()
        tasks[holder].cancel()
        await asyncio.gather(beats[holder], tasks[holder], return_exceptions=True)
        [(dead, _, runs_out)] = await _leases(engine)
        assert dead == workers[holder].id
        other = pollers[1 - holder]
        await wait_until(lambda: _connected(other), timeout=15, what="the standby took over")
        [(taker, taken, _)] = await _leases(engine)
        # The other one took it, not before the lease ran out, and soon after.
        assert taker == workers[1 - holder].id
        assert runs_out <= taken < runs_out + timedelta(seconds=3), (runs_out, taken)
        await append(dovecot, imap_user, *mails("after the takeover"))
        await wait_until(lambda: _at_least(engine, 1), what="mail stored by the new poller")
    finally:
        stop.set()
        await asyncio.gather(*tasks, *beats, return_exceptions=True)


async def _any_connected(pollers: list[ImapPoller]) -> bool:
    return any(p.connected.is_set() for p in pollers)


async def _connected(poller: ImapPoller) -> bool:
    return poller.connected.is_set()


@pytest.mark.asyncio
async def test_a_poller_that_lost_its_lease_moves_no_mail(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    # A worker presumed dead by mistake (its loop stalled past dead_after under load) goes on
    # until its next heartbeat, while the process that took its mailbox over polls too: both
    # fetch the same mail, and two MOVEs of one message left two copies in Processed.
    from qa_mailer.ingest.imap import LeaseLost
    from qa_mailer.ingest.imap_connection import connect

    timing = Timing(heartbeat_seconds=0.2, dead_after_seconds=0.5)
    (stalled, other), (stale, taker) = await two_processes(engine, imap_config, timing)
    assert await stalled.acquire(stale.lease)
    await asyncio.sleep(1.0)  # no heartbeat from the stalled one...
    assert await other.beat() == [stalled.id]  # ...so the other presumes it dead
    assert await other.acquire(taker.lease)
    assert stale.lease in stalled.held  # the stalled one has not heard of it yet

    await append(dovecot, imap_user, *mails("one", "two", "three"))
    connection = await connect(imap_config)
    try:
        with pytest.raises(LeaseLost):
            await stale.sync(connection, await stale._select(connection))
    finally:
        await connection.logout()
    assert stalled.lost(stale.lease).is_set()
    assert len(await flags_in(dovecot, imap_user)) == 3  # nothing moved by the stale poller

    connection = await connect(imap_config)
    try:
        await taker.sync(connection, await taker._select(connection))
    finally:
        await connection.logout()
    assert await flags_in(dovecot, imap_user) == []
    assert len(await flags_in(dovecot, imap_user, "Processed")) == 3
    assert await stored(engine) == 3


@pytest.mark.asyncio
async def test_a_stop_ends_the_catching_up_after_the_batch_in_hand(
    engine: AsyncEngine, dovecot: DovecotServer, imap_user: ImapUser, imap_config: ImapConfig
) -> None:
    # A stop lets the work in flight finish: for a poller catching up on a full mailbox that
    # is the batch in hand, not the whole mailbox (which the grace period then cut short).
    waiting = 1500
    await append(dovecot, imap_user, *mails(*(f"m{n}" for n in range(waiting))))
    config = replace(imap_config, fetch_batch=10)
    async with polling(engine, config):
        await wait_until(lambda: _at_least(engine, 20), what="the first batches stored")
    # polling() set stop and waited for the poller to end
    taken = await stored(engine)
    assert taken < waiting
    assert len(await flags_in(dovecot, imap_user)) == waiting - taken  # the rest wait there

    async with polling(engine, config):
        await wait_until(lambda: inbox_empty(dovecot, imap_user), timeout=60, what="the rest taken")
    assert await stored(engine) == waiting
    assert len(await flags_in(dovecot, imap_user, "Processed")) == waiting
