"""The IMAP poller: IDLE on the Q&A mailbox, store each new message, then mark it.

The highest stored UID per (mailbox, UIDVALIDITY) lives in the database and advances in the
same transaction as the message, so a restart resumes where it stopped. Only after that commit
is the message marked (a keyword, or moved to a folder); \\Seen is never relied on and nothing
is ever deleted. A message stored but not yet marked when the service stopped is marked on the
next connection. With several processes on one database, one of them polls a mailbox: the one
holding its lease (see workers.py); another takes over within seconds when that one dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import aioimaplib

from qa_mailer.backoff import Backoff, wait_or_stop
from qa_mailer.config import ImapConfig
from qa_mailer.db.engine import SessionFactory
from qa_mailer.ingest.store import Envelope, ImapOrigin, MessageStore, read_cursor
from qa_mailer.workers import Workers

log = logging.getLogger("qa_mailer.ingest.imap")

_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"UID (\d+)")


class ImapError(Exception):
    """The server refused something the poller needs."""


@dataclass(frozen=True)
class MailboxState:
    uidvalidity: int
    exists: int


class ImapPoller:
    """Keeps one connection to the mailbox; reconnects with exponential backoff and jitter."""

    def __init__(
        self,
        config: ImapConfig,
        store: MessageStore,
        sessions: SessionFactory,
        workers: Workers,
    ):
        self._config = config
        self._store = store
        self._sessions = sessions
        self._workers = workers
        self.lease = f"imap:{config.account}/{config.mailbox}"
        self.connected = asyncio.Event()  # set while a session is open; tests wait on it

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set, whenever this process holds the mailbox's lease."""
        try:
            await self._run(stop)
        finally:
            # Another process may take the mailbox over at once, not when the lease runs out.
            with contextlib.suppress(Exception):
                await self._workers.release(self.lease)

    async def _run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(initial=1.0, maximum=300.0, rng=random.random)
        waiting_logged = False
        while not stop.is_set():
            try:
                if not await self._workers.acquire(self.lease):
                    if not waiting_logged:
                        log.info("IMAP %s is polled by another process; standing by", self.lease)
                        waiting_logged = True
                    await wait_or_stop(stop, self._workers.timing.heartbeat_seconds)
                    continue
            except Exception:
                log.exception("cannot take the IMAP lease (is the database reachable?)")
                await wait_or_stop(stop, backoff.next_delay())
                continue
            waiting_logged = False
            halt = _either(stop, self._workers.lost(self.lease))
            try:
                await self._session(halt, backoff)
            except (OSError, TimeoutError, aioimaplib.AioImapException, ImapError) as exc:
                delay = backoff.next_delay()
                log.warning(
                    "IMAP %s: %s; reconnecting in %.1f s",
                    self._config.account,
                    _describe(exc),
                    delay,
                )
                await wait_or_stop(stop, delay)
            except Exception:
                # The database may be down while the server is fine: the mail stays on the
                # server and is fetched again after the wait.
                delay = backoff.next_delay()
                log.exception(
                    "IMAP %s: unexpected failure; retrying in %.1f s", self._config.account, delay
                )
                await wait_or_stop(stop, delay)
            finally:
                self.connected.clear()
                halt.cancel_watch()

    async def _session(self, stop: asyncio.Event, backoff: Backoff) -> None:
        lost = asyncio.Event()
        client = await connect(self._config, on_lost=lambda _exc: lost.set())
        try:
            state = await self._select(client)
            backoff.reset()
            self.connected.set()
            idle = self._config.use_idle and client.has_capability("IDLE")
            if self._config.use_idle and not idle:
                log.info("IMAP server has no IDLE; polling every %.0f s", self._config.poll_seconds)
            while not stop.is_set():
                await self.sync(client, state)
                if lost.is_set():
                    raise ImapError("connection lost")
                if idle:
                    await self._idle(client, stop, lost)
                else:
                    await wait_or_stop(stop, self._config.poll_seconds)
                    await client.noop()
        finally:
            await _logout(client, self._config.timeout_seconds)

    async def _select(self, client: aioimaplib.IMAP4) -> MailboxState:
        if self._config.processed == "folder":
            # CREATE answers NO when the folder exists already; that is fine.
            await client.create(self._config.processed_folder)
        response = await client.select(self._config.mailbox)
        if response.result != "OK":
            raise ImapError(f"cannot select {self._config.mailbox}: {_text(response.lines)}")
        text = _text(response.lines)
        validity = re.search(r"\[UIDVALIDITY (\d+)\]", text)
        exists = re.search(r"(\d+) EXISTS", text)
        if validity is None:
            raise ImapError(f"the server gave no UIDVALIDITY for {self._config.mailbox}")
        return MailboxState(int(validity.group(1)), int(exists.group(1)) if exists else 0)

    async def sync(self, client: aioimaplib.IMAP4, state: MailboxState) -> int:
        """Store every message newer than the cursor and mark it; return how many were new."""
        config = self._config
        cursor = await read_cursor(self._sessions, config.account, config.mailbox)
        last_uid = 0
        if cursor is not None and cursor[0] == state.uidvalidity:
            last_uid = cursor[1]
        elif cursor is not None:
            # The server renumbered the mailbox: read it all again; fingerprints drop duplicates.
            log.warning(
                "UIDVALIDITY of %s changed (%d -> %d): resyncing",
                config.mailbox,
                cursor[0],
                state.uidvalidity,
            )
        if last_uid:
            await self._mark(
                client,
                await self._search(
                    client, f"UID 1:{last_uid} UNKEYWORD {config.processed_keyword}"
                ),
            )
        # "n:*" always matches the newest message, even one below n: filter.
        new = [uid for uid in await self._search(client, f"UID {last_uid + 1}:*") if uid > last_uid]
        stored = 0
        for batch in _batches(new, config.fetch_batch):
            fetched = await self._fetch(client, batch)
            envelope = Envelope(source="imap")
            results = await self._store.store_many(
                [
                    (
                        raw,
                        envelope,
                        ImapOrigin(config.account, config.mailbox, state.uidvalidity, uid),
                    )
                    for uid, raw in fetched
                ]
            )
            stored += sum(not result.duplicate for result in results)
            await self._mark(client, batch)
        return stored

    async def _search(self, client: aioimaplib.IMAP4, criteria: str) -> list[int]:
        response = await client.uid_search(criteria, charset=None)
        if response.result != "OK":
            raise ImapError(f"UID SEARCH {criteria} refused: {_text(response.lines)}")
        # aioimaplib strips "* SEARCH" from the data lines; the last line is the tagged status.
        uids: list[int] = []
        for line in response.lines[:-1]:
            if isinstance(line, bytes):
                uids.extend(int(token) for token in line.split() if token.isdigit())
        return sorted(uids)

    async def _fetch(
        self, client: aioimaplib.IMAP4, uids: Sequence[int]
    ) -> list[tuple[int, bytes]]:
        # Small batches: aioimaplib handles each response line recursively and slows down as a
        # response grows (see shared/NOTES.md).
        response = await client.uid("fetch", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
        if response.result != "OK":
            raise ImapError(f"UID FETCH refused: {_text(response.lines)}")
        return sorted(parse_fetch(response.lines))

    async def _mark(self, client: aioimaplib.IMAP4, uids: Sequence[int]) -> None:
        if not uids:
            return
        config = self._config
        uid_set = ",".join(map(str, uids))
        response = await client.uid(
            "store", uid_set, "+FLAGS.SILENT", f"({config.processed_keyword})"
        )
        if response.result != "OK":
            raise ImapError(f"cannot set {config.processed_keyword}: {_text(response.lines)}")
        if config.processed != "folder":
            return
        if client.has_capability("MOVE"):
            response = await client.uid("move", uid_set, config.processed_folder)
        else:
            # Without MOVE the copy is made and the original keeps its keyword: deleting would
            # need EXPUNGE, and the poller never deletes mail.
            response = await client.uid("copy", uid_set, config.processed_folder)
        if response.result != "OK":
            raise ImapError(f"cannot move to {config.processed_folder}: {_text(response.lines)}")

    async def _idle(
        self, client: aioimaplib.IMAP4, stop: asyncio.Event, lost: asyncio.Event
    ) -> None:
        timeout = self._config.timeout_seconds
        renew = self._config.idle_renew_seconds
        idle = await asyncio.wait_for(client.idle_start(timeout=renew), timeout)
        try:
            while True:
                push = asyncio.ensure_future(client.wait_server_push(timeout=renew + timeout))
                stopped = asyncio.ensure_future(stop.wait())
                dropped = asyncio.ensure_future(lost.wait())
                done, pending = await asyncio.wait(
                    {push, stopped, dropped}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
                if push not in done:
                    return
                lines = push.result()
                # aioimaplib queues STOP_WAIT_SERVER_PUSH when the renewal time comes.
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH or any(
                    b"EXISTS" in line for line in lines
                ):
                    return
        finally:
            if client.has_pending_idle() and not lost.is_set():
                client.idle_done()
                await asyncio.wait_for(idle, timeout)


async def connect(
    config: ImapConfig, on_lost: Callable[[Exception | None], None]
) -> aioimaplib.IMAP4:
    """Connect, secure (TLS or STARTTLS) and log in."""
    context = _ssl_context(config) if config.security != "none" else None
    client: aioimaplib.IMAP4
    if config.security == "tls":
        client = aioimaplib.IMAP4_SSL(
            config.host, config.port, timeout=config.timeout_seconds, ssl_context=context
        )
    else:
        client = aioimaplib.IMAP4(config.host, config.port, timeout=config.timeout_seconds)
    client.protocol.conn_lost_cb = on_lost
    try:
        await client.wait_hello_from_server()
        if config.security == "starttls":
            assert context is not None
            await _starttls(client, context, config)
        response = await client.login(config.username, config.password())
        if response.result != "OK":
            raise ImapError(f"login refused for {config.username}")
    except BaseException:
        _close(client)
        raise
    return client


async def _starttls(client: aioimaplib.IMAP4, context: ssl.SSLContext, config: ImapConfig) -> None:
    # aioimaplib has no STARTTLS: issue the command, then upgrade the transport in place.
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapError(f"{config.host} does not offer STARTTLS")
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    response = await asyncio.wait_for(protocol.execute(command), config.timeout_seconds)
    if response.result != "OK":
        raise ImapError(f"STARTTLS refused: {_text(response.lines)}")
    loop = asyncio.get_running_loop()
    protocol.transport = await asyncio.wait_for(
        loop.start_tls(protocol.transport, protocol, context, server_hostname=config.host),
        config.timeout_seconds,
    )
    # Capabilities may change once the channel is secure (LOGIN is often offered only then).
    await asyncio.wait_for(protocol.capability(), config.timeout_seconds)


def _ssl_context(config: ImapConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    return context


async def _logout(client: aioimaplib.IMAP4, timeout: float) -> None:
    with contextlib.suppress(OSError, TimeoutError, aioimaplib.AioImapException):
        await asyncio.wait_for(client.logout(), timeout)
    _close(client)


def _close(client: aioimaplib.IMAP4) -> None:
    transport = client.protocol.transport
    if transport is not None:
        transport.close()


def parse_fetch(lines: Iterable[bytes | bytearray]) -> list[tuple[int, bytes]]:
    """(UID, message) pairs from a UID FETCH (UID BODY.PEEK[]) response.

    Each message arrives as a ``n FETCH (... {size}`` line, the literal as a bytearray, and a
    closing line; the UID may be on either side of the literal.
    """
    found: list[tuple[int, bytes]] = []
    uid: int | None = None
    literal: bytes | None = None
    for line in lines:
        if isinstance(line, bytearray):
            literal = bytes(line)
            continue
        if _FETCH_START.match(line):
            if uid is not None and literal is not None:
                found.append((uid, literal))
            uid, literal = None, None
        match = _UID.search(line)
        if match and uid is None:
            uid = int(match.group(1))
    if uid is not None and literal is not None:
        found.append((uid, literal))
    return found


class _Either(asyncio.Event):
    """An event set as soon as either of two others is."""

    def __init__(self, first: asyncio.Event, second: asyncio.Event):
        super().__init__()
        self._watch = asyncio.ensure_future(self._wait(first, second))

    async def _wait(self, first: asyncio.Event, second: asyncio.Event) -> None:
        waiters = {asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        self.set()

    def cancel_watch(self) -> None:
        self._watch.cancel()


def _either(first: asyncio.Event, second: asyncio.Event) -> _Either:
    return _Either(first, second)


def _batches(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _text(lines: Iterable[bytes | bytearray]) -> str:
    return " ".join(
        bytes(line).decode("utf-8", "replace") for line in lines if isinstance(line, bytes)
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
