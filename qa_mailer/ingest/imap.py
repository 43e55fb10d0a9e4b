"""The IMAP poller: IDLE on the Q&A mailbox, store each new message, then mark it.

The highest stored UID per (mailbox, UIDVALIDITY) lives in the database and advances in the
same transaction as the message, so a restart resumes where it stopped. Only after that commit
is the message marked (a keyword, or moved to a folder); \\Seen is never relied on and nothing
is ever deleted. A message stored but not yet marked when the service stopped is marked on the
next connection. With several processes on one database, one of them polls a mailbox: the one
holding its lease (see workers.py); another takes over within seconds when that one dies.

Messages are taken in UID order, so the cursor never passes one that is not stored. One over
the size limit (the SMTP listener's) is recorded by its headers, quarantined with the reason,
and marked like the others; the rest are fetched in batches cut by count and by bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aioimaplib

from qa_mailer.backoff import Backoff, wait_for_wakeup, wait_or_stop
from qa_mailer.config import ImapConfig
from qa_mailer.db.engine import SessionFactory
from qa_mailer.diagnose import Misconfigured, SetupError, diagnose, imap_endpoint
from qa_mailer.ingest.imap_connection import (
    ConnectionLost,
    ImapConnection,
    ImapError,
    ImapMisconfigured,
    Outage,
    connect,
    search_uids,
    server_away,
    text_of,
)
from qa_mailer.ingest.imap_fetch import (
    SIZES_PER_FETCH,
    FetchLimits,
    TooLargeStep,
    chunks,
    parse_fetch,
    parse_sizes,
    plan,
    uid_set,
)
from qa_mailer.ingest.store import Envelope, ImapOrigin, MessageStore, TooLarge, read_cursor
from qa_mailer.oauth2 import TokenSource
from qa_mailer.workers import Workers

__all__ = ["FetchLimits", "ImapError", "ImapPoller", "MailboxState", "connect", "parse_fetch"]

log = logging.getLogger("qa_mailer.ingest.imap")

# The server went away (a restart, the network): try again soon, so that ingest resumes
# within seconds of its return. One TCP connection attempt every few seconds costs nothing.
_RECONNECT = (0.5, 5.0)
# The server refused us, or something else failed: back off up to five minutes, so that a
# wrong password does not hammer the server (nor lock the account).
_REFUSED = (1.0, 300.0)
# A round that heard of new mail is followed by another; a server that announced mail it
# then never shows would keep us searching, so a few empty rounds in a row end it.
_EMPTY_ROUNDS = 3
# A definite mistake in the settings (a refused login, a wrong TLS setting) is tried this many
# times in a row, then the service stops with the cause.
_DEFINITE_TRIES = 3
# Enough for any real header block; a hostile one is cut here rather than held whole.
_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class MailboxState:
    uidvalidity: int
    exists: int


class LeaseLost(Exception):
    """This process no longer holds the mailbox's lease: another one polls it now."""


class ImapPoller:
    """Keeps one connection to the mailbox; reconnects with exponential backoff and jitter."""

    def __init__(
        self,
        config: ImapConfig,
        store: MessageStore,
        sessions: SessionFactory,
        workers: Workers,
        limits: FetchLimits | None = None,
        tokens: TokenSource | None = None,
    ):
        self._config = config
        self._tokens = (tokens or TokenSource(config.oauth2)) if config.oauth2 is not None else None
        self._store = store
        self._sessions = sessions
        self._workers = workers
        self._limits = limits or FetchLimits()
        self.lease = f"imap:{config.account}/{config.mailbox}"
        self.connected = asyncio.Event()  # set while a session is open; tests wait on it
        # Set once the mail that waited in the mailbox at start-up has been stored; the
        # digests wait for it, so they never go out before the news they should carry.
        self.caught_up = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set, whenever this process holds the mailbox's lease."""
        try:
            await self._run(stop)
        finally:
            # Another process may take the mailbox over at once, not when the lease runs out.
            with contextlib.suppress(Exception):
                await self._workers.release(self.lease)

    async def _run(self, stop: asyncio.Event) -> None:
        reconnect = Backoff(*_RECONNECT, rng=random.random)
        refused = Backoff(*_REFUSED, rng=random.random)
        outage = Outage(self._config.account, log)

        mistakes = 0

        def connected(state: MailboxState, idle: bool) -> None:
            nonlocal mistakes
            reconnect.reset()
            refused.reset()
            mistakes = 0
            outage.over(self._config.mailbox, state.exists, idle)

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
                await wait_or_stop(stop, refused.next_delay())
                continue
            waiting_logged = False
            halt = _either(stop, self._workers.lost(self.lease))
            try:
                await self._session(halt, connected)
            except (
                OSError,
                TimeoutError,
                aioimaplib.AioImapException,
                ImapError,
                Misconfigured,
            ) as exc:
                diagnosis = await diagnose(exc, imap_endpoint(self._config))
                if diagnosis.definite:
                    # A refused login or a wrong TLS setting does not heal by itself, and a
                    # provider may lock an account that keeps failing: a few tries (a
                    # password being changed at that moment), then the service stops.
                    mistakes += 1
                    if mistakes >= _DEFINITE_TRIES:
                        raise SetupError(
                            f"IMAP {self._config.account}: {diagnosis.text} "
                            f"(stopped after {mistakes} tries)"
                        ) from exc
                away = server_away(exc)
                delay = (reconnect if away else refused).next_delay()
                outage.failed(diagnosis.text, away, delay)
                await wait_or_stop(stop, delay)
            except LeaseLost:
                log.warning(
                    "IMAP %s: another process took the mailbox over; leaving it to that one",
                    self._config.account,
                )
            except Exception:
                # The database may be down while the server is fine: the mail stays on the
                # server and is fetched again after the wait.
                delay = refused.next_delay()
                log.exception(
                    "IMAP %s: unexpected failure; retrying in %.1f s", self._config.account, delay
                )
                await wait_or_stop(stop, delay)
            finally:
                self.connected.clear()
                halt.cancel_watch()

    async def _session(
        self, stop: asyncio.Event, connected: Callable[[MailboxState, bool], None]
    ) -> None:
        connection = await connect(self._config, self._tokens)
        try:
            state = await self._select(connection)
            idle = self._config.use_idle and connection.has_capability("IDLE")
            connected(state, idle)
            self.connected.set()
            if self._config.use_idle and not idle:
                log.info("IMAP server has no IDLE; polling every %.0f s", self._config.poll_seconds)
            while not stop.is_set():
                await self._catch_up(connection, state, stop)
                self.caught_up.set()
                if idle:
                    await self._idle(connection, stop)
                else:
                    await wait_for_wakeup(stop, connection.lost, self._config.poll_seconds)
                    if not stop.is_set():
                        await connection.command(connection.client.noop())
        finally:
            await connection.logout()

    async def _select(self, connection: ImapConnection) -> MailboxState:
        client = connection.client
        if self._config.processed == "folder":
            # CREATE answers NO when the folder exists already; that is fine.
            await connection.command(client.create(self._config.processed_folder))
        response = await connection.command(client.select(self._config.mailbox))
        if response.result != "OK":
            raise ImapMisconfigured(
                f"cannot select {self._config.mailbox} ({text_of(response.lines)}): "
                "check imap.mailbox"
            )
        text = text_of(response.lines)
        validity = re.search(r"\[UIDVALIDITY (\d+)\]", text)
        exists = re.search(r"(\d+) EXISTS", text)
        if validity is None:
            raise ImapError(f"the server gave no UIDVALIDITY for {self._config.mailbox}")
        return MailboxState(int(validity.group(1)), int(exists.group(1)) if exists else 0)

    async def _catch_up(
        self, connection: ImapConnection, state: MailboxState, stop: asyncio.Event
    ) -> None:
        """Sync until a round hears of no new mail.

        A server announces new mail once, in the response to whatever command is running:
        one that lands during a FETCH, STORE or MOVE is announced there and not again in
        IDLE. Going idle after such a round left the message waiting for the IDLE renewal.
        """
        empty_rounds = 0
        while not stop.is_set() and empty_rounds < _EMPTY_ROUNDS:
            connection.announced = False
            found = await self.sync(connection, state, stop)
            if not connection.announced:
                return
            empty_rounds = 0 if found else empty_rounds + 1
            log.debug("IMAP %s: mail announced during the round; looking again", self.lease)

    async def sync(
        self, connection: ImapConnection, state: MailboxState, stop: asyncio.Event | None = None
    ) -> int:
        """Take every message newer than the cursor and mark it; return how many there were.

        Once ``stop`` is set, the batch in hand is finished and the rest wait on the server.
        """
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
            # Stored but not yet marked when the service stopped. With MOVE that also means
            # flagged but not moved (killed between STORE and MOVE): anything still in the
            # mailbox below the cursor is stored, and goes. Without MOVE the copied originals
            # stay, flagged, and must not be copied again.
            leftovers = f"UID 1:{last_uid}"
            if config.processed != "folder" or not connection.has_capability("MOVE"):
                leftovers += f" UNKEYWORD {config.processed_keyword}"
            await self._mark(connection, await self._search(connection, leftovers))
        # "n:*" always matches the newest message, even one below n: filter.
        new = [u for u in await self._search(connection, f"UID {last_uid + 1}:*") if u > last_uid]
        for some in chunks(new, SIZES_PER_FETCH):
            sizes = await self._sizes(connection, some)
            for step in plan(sizes, self._limits, config.fetch_batch):
                if stop is not None and stop.is_set():
                    return len(new)
                if isinstance(step, TooLargeStep):
                    await self._record_too_large(connection, state, step)
                else:
                    await self._take(connection, state, step)
        return len(new)

    async def _take(
        self, connection: ImapConnection, state: MailboxState, batch: Sequence[int]
    ) -> None:
        config = self._config
        fetched = await self._fetch(connection, batch)
        envelope = Envelope(source="imap")
        await self._store.store_many(
            [
                (raw, envelope, ImapOrigin(config.account, config.mailbox, state.uidvalidity, uid))
                for uid, raw in fetched
            ]
        )
        await self._mark(connection, batch)

    async def _record_too_large(
        self, connection: ImapConnection, state: MailboxState, step: TooLargeStep
    ) -> None:
        config, limit = self._config, self._limits.max_message_bytes
        response = await connection.command(
            connection.client.uid(
                "fetch", str(step.uid), f"(UID BODY.PEEK[HEADER]<0.{_HEADER_BYTES}>)"
            )
        )
        if response.result != "OK":
            raise ImapError(f"UID FETCH of headers refused: {text_of(response.lines)}")
        heads = parse_fetch(response.lines)
        if not heads:
            return  # gone meanwhile (another client moved or deleted it)
        where = (
            f"moved to {config.processed_folder}"
            if config.processed == "folder"
            else f"left in {config.mailbox} with keyword {config.processed_keyword}"
        )
        reason = (
            f"too large: {_megabytes(step.size)} > limit {_megabytes(limit)}; "
            f"only its headers are kept here, the message was {where}"
        )
        origin = ImapOrigin(config.account, config.mailbox, state.uidvalidity, step.uid)
        stored = await self._store.store_too_large(
            heads[0][1], Envelope(source="imap"), origin, TooLarge(step.size, reason)
        )
        # Recorded once: after a resync the same headers are a duplicate, already shown.
        log.log(
            logging.INFO if stored.duplicate else logging.WARNING,
            "message %d %s from %s is %s; quarantined by its headers",
            stored.id,
            stored.message_id,
            self.lease,
            reason,
        )
        await self._mark(connection, [step.uid])

    async def _search(self, connection: ImapConnection, criteria: str) -> list[int]:
        return await search_uids(connection, criteria)

    async def _sizes(
        self, connection: ImapConnection, uids: Sequence[int]
    ) -> list[tuple[int, int]]:
        # The sizes come before any body, so that no batch, and no single message over the
        # limit, is held in memory whole.
        response = await connection.command(
            connection.client.uid("fetch", uid_set(uids), "(UID RFC822.SIZE)")
        )
        if response.result != "OK":
            raise ImapError(f"UID FETCH of sizes refused: {text_of(response.lines)}")
        return parse_sizes(response.lines)

    async def _fetch(
        self, connection: ImapConnection, uids: Sequence[int]
    ) -> list[tuple[int, bytes]]:
        # Small batches: aioimaplib handles each response line recursively and slows down as a
        # response grows (see shared/NOTES.md).
        response = await connection.command(
            connection.client.uid("fetch", uid_set(uids), "(UID BODY.PEEK[])")
        )
        if response.result != "OK":
            raise ImapError(f"UID FETCH refused: {text_of(response.lines)}")
        return sorted(parse_fetch(response.lines))

    async def _mark(self, connection: ImapConnection, uids: Sequence[int]) -> None:
        if not uids:
            return
        config, client = self._config, connection.client
        # Another process that took the mailbox over may hold the same messages: only the
        # lease's holder marks and moves them (two MOVEs of one message can leave two copies).
        if not await self._workers.confirm(self.lease):
            raise LeaseLost(self.lease)
        uids_ = uid_set(uids)
        response = await connection.command(
            client.uid("store", uids_, "+FLAGS.SILENT", f"({config.processed_keyword})")
        )
        if response.result != "OK":
            raise ImapError(f"cannot set {config.processed_keyword}: {text_of(response.lines)}")
        if config.processed != "folder":
            return
        if connection.has_capability("MOVE"):
            response = await connection.command(client.uid("move", uids_, config.processed_folder))
        else:
            # Without MOVE the copy is made and the original keeps its keyword: deleting would
            # need EXPUNGE, and the poller never deletes mail.
            response = await connection.command(client.uid("copy", uids_, config.processed_folder))
        if response.result != "OK":
            raise ImapError(f"cannot move to {config.processed_folder}: {text_of(response.lines)}")

    async def _idle(self, connection: ImapConnection, stop: asyncio.Event) -> None:
        """Wait in IDLE until new mail is announced, the renewal is due, or ``stop``."""
        client, lost = connection.client, connection.lost
        timeout = self._config.timeout_seconds
        renew = self._config.idle_renew_seconds
        idle = await connection.wait(client.idle_start(timeout=renew), timeout)
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
                    if lost.is_set():
                        raise ConnectionLost("the server closed the connection")
                    return
                lines = push.result()
                # aioimaplib queues STOP_WAIT_SERVER_PUSH when the renewal time comes.
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH or connection.announced:
                    return
                if any(bytes(line).startswith(b"BYE") for line in lines):
                    # The server is going away (a restart): do not wait for the socket.
                    raise ConnectionLost(f"the server said {text_of(lines)}")
        finally:
            if client.has_pending_idle() and not lost.is_set():
                client.idle_done()
                with contextlib.suppress(ConnectionLost):
                    await connection.wait(idle, timeout)


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


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
