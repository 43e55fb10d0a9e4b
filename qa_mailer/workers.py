"""The processes serving one database: who they are, that they are alive, and what they hold.

Each `qa-mailer serve` registers as a worker and beats every few seconds. Each beat also looks
for workers whose heartbeat stopped: such a worker is presumed dead, the messages it had
claimed go back to their queue and its leases are freed, so another process takes its work
over within seconds. (A worker presumed dead by mistake, say one that waited long for the
database, loses nothing but time: its writes check that its claims are still its own. Mail
it claimed is not taken from it this way, because sending cannot be checked like that; a
mail claim is only free when its own lease runs out: see send/sender.py.) Leases are named jobs only one process
may do at a time: polling one IMAP mailbox, the scheduler. A worker renews its leases with
every beat and drops a job whose lease it lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer import __version__
from qa_mailer.backoff import wait_or_stop
from qa_mailer.clock import Clock
from qa_mailer.config import WorkersConfig
from qa_mailer.db import (
    InboundMessage,
    Lease,
    MessageState,
    OutboxMail,
    OutboxState,
    Worker,
)
from qa_mailer.db.engine import SessionFactory

log = logging.getLogger("qa_mailer.workers")


@dataclass(frozen=True)
class Timing:
    """How often a worker beats, and how long a silence means it is dead ([workers])."""

    heartbeat_seconds: float = 3.0
    dead_after_seconds: float = 15.0

    @classmethod
    def of(cls, config: WorkersConfig) -> Timing:
        return cls(config.heartbeat_seconds, config.dead_after_seconds)


FORGET_AFTER = timedelta(days=7)


class NotRegistered(RuntimeError):
    """A stage asked for the worker id before the worker registered."""


class Workers:
    """This process as a worker: registration, heartbeat, reaping the dead, and leases."""

    def __init__(self, sessions: SessionFactory, clock: Clock, timing: Timing | None = None):
        self._sessions = sessions
        self._clock = clock
        self.timing = timing or Timing()
        self._id: int | None = None
        self.held: set[str] = set()
        self._lost: dict[str, asyncio.Event] = {}

    @property
    def id(self) -> int:
        if self._id is None:
            raise NotRegistered("the worker has not registered yet")
        return self._id

    @property
    def dead_after(self) -> timedelta:
        return timedelta(seconds=self.timing.dead_after_seconds)

    async def register(self, roles: Iterable[str]) -> int:
        """Record this process as a worker; return its id."""
        now = self._clock.now()
        async with self._sessions.begin() as tx:
            worker = Worker(
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                roles=",".join(roles)[:64],
                version=__version__,
                started_at=now,
                heartbeat_at=now,
            )
            tx.add(worker)
            await tx.flush()
            self._id = worker.id
        log.info("worker %d registered (%s)", worker.id, worker.roles)
        return worker.id

    async def run(self, stop: asyncio.Event) -> None:
        """Beat until ``stop``; a failed beat (database away) is logged and tried again."""
        while not await wait_or_stop(stop, self.timing.heartbeat_seconds):
            try:
                await self.beat()
            except Exception:
                log.exception(
                    "heartbeat failed; trying again in %.0f s", self.timing.heartbeat_seconds
                )

    async def beat(self) -> list[int]:
        """Say this worker is alive, renew its leases, and reap dead workers; return theirs."""
        now = self._clock.now()
        async with self._sessions.begin() as tx:
            revived = await tx.scalar(
                select(Worker.stop_reason).where(
                    Worker.id == self.id, Worker.stopped_at.is_not(None)
                )
            )
            await tx.execute(
                update(Worker)
                .where(Worker.id == self.id)
                .values(heartbeat_at=now, stopped_at=None, stop_reason=None)
            )
            if revived is not None:
                log.warning(
                    "worker %d was presumed dead by another process (%s); carrying on",
                    self.id,
                    revived,
                )
            held = set(
                await tx.scalars(
                    update(Lease)
                    .where(Lease.worker_id == self.id)
                    .values(expires_at=now + self.dead_after)
                    .returning(Lease.name)
                )
            )
            dead = await self._reap(tx, now)
        lost = self.held - held
        if lost:
            log.warning("lease(s) lost to another process: %s", ", ".join(sorted(lost)))
            for name in lost:
                self.lost(name).set()
        self.held = held
        return dead

    async def _reap(self, tx: AsyncSession, now: datetime) -> list[int]:
        # Workers that ended a week ago are history nobody reads (status shows a day).
        await tx.execute(delete(Worker).where(Worker.stopped_at < now - FORGET_AFTER))
        silent_since = now - self.dead_after
        dead = list(
            await tx.scalars(
                select(Worker.id).where(
                    Worker.stopped_at.is_(None),
                    Worker.heartbeat_at < silent_since,
                    Worker.id != self.id,
                )
            )
        )
        if not dead:
            return []
        await tx.execute(
            update(Worker)
            .where(Worker.id.in_(dead))
            .values(
                stopped_at=now,
                stop_reason=f"presumed dead: no heartbeat for {self.timing.dead_after_seconds:.0f} s",
            )
        )
        await _release_claims(tx, dead, now)
        await tx.execute(delete(Lease).where(Lease.worker_id.in_(dead)))
        log.warning(
            "worker(s) %s presumed dead (no heartbeat for %.0f s): their work is free again",
            ", ".join(map(str, dead)),
            self.timing.dead_after_seconds,
        )
        return dead

    async def acquire(self, name: str) -> bool:
        """Take the lease ``name`` if it is free or expired (or already ours); True if held."""
        now = self._clock.now()
        try:
            async with self._sessions.begin() as tx:
                taken = await tx.scalar(
                    update(Lease)
                    .where(
                        Lease.name == name,
                        (Lease.worker_id == self.id) | (Lease.expires_at < now),
                    )
                    .values(worker_id=self.id, acquired_at=now, expires_at=now + self.dead_after)
                    .returning(Lease.name)
                )
                if taken is None:
                    exists = await tx.scalar(select(Lease.name).where(Lease.name == name))
                    if exists is not None:
                        return False
                    tx.add(
                        Lease(
                            name=name,
                            worker_id=self.id,
                            acquired_at=now,
                            expires_at=now + self.dead_after,
                        )
                    )
        except IntegrityError:
            # Another process inserted the same lease between our check and our insert.
            return False
        if name not in self.held:
            log.info("lease %s taken by worker %d", name, self.id)
        self.held.add(name)
        self.lost(name).clear()
        return True

    async def confirm(self, name: str) -> bool:
        """Renew the lease ``name`` if this worker still holds it; if not, mark it lost.

        For a step that must not be done twice, such as moving mail on the server: the
        heartbeat learns of a lost lease up to a beat late, and a worker presumed dead by
        mistake (its loop stalled past ``dead_after``) would go on meanwhile beside the
        process that took its job over.
        """
        now = self._clock.now()
        async with self._sessions.begin() as tx:
            held = await tx.scalar(
                update(Lease)
                .where(Lease.name == name, Lease.worker_id == self.id)
                .values(expires_at=now + self.dead_after)
                .returning(Lease.name)
            )
        if held is not None:
            return True
        if name in self.held:
            log.warning("lease lost to another process: %s", name)
        self.held.discard(name)
        self.lost(name).set()
        return False

    def lost(self, name: str) -> asyncio.Event:
        """An event set when this worker loses the lease ``name`` to another process."""
        return self._lost.setdefault(name, asyncio.Event())

    async def release(self, name: str) -> None:
        """Give the lease ``name`` up, so another process can take it at once."""
        self.held.discard(name)
        async with self._sessions.begin() as tx:
            await tx.execute(delete(Lease).where(Lease.name == name, Lease.worker_id == self.id))

    async def stop(self, reason: str = "stopped") -> None:
        """Leave cleanly: whatever is still claimed goes back at once, leases are freed."""
        if self._id is None:
            return
        now = self._clock.now()
        async with self._sessions.begin() as tx:
            # This process sends nothing more: its mail claims may go at once, too.
            await _release_claims(tx, [self.id], now, mail=True)
            await tx.execute(delete(Lease).where(Lease.worker_id == self.id))
            await tx.execute(
                update(Worker)
                .where(Worker.id == self.id)
                .values(stopped_at=now, stop_reason=reason, heartbeat_at=now)
            )
        self.held.clear()
        log.info("worker %d %s", self.id, reason)


async def _release_claims(
    tx: AsyncSession, workers: list[int], now: datetime, *, mail: bool = False
) -> None:
    # The lease runs out now: the next claim takes the row, and counts another attempt.
    await tx.execute(
        update(InboundMessage)
        .where(
            InboundMessage.claimed_by.in_(workers),
            InboundMessage.state == MessageState.PROCESSING,
        )
        .values(lease_until=now)
    )
    if mail:
        await tx.execute(
            update(OutboxMail)
            .where(OutboxMail.claimed_by.in_(workers), OutboxMail.state == OutboxState.SENDING)
            .values(lease_until=now)
        )


async def live_workers(tx: AsyncSession, now: datetime, dead_after: timedelta) -> list[Worker]:
    """Workers that have not stopped and beat within ``dead_after``, oldest first."""
    return list(
        await tx.scalars(
            select(Worker)
            .where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= now - dead_after)
            .order_by(Worker.id)
        )
    )


@contextlib.asynccontextmanager
async def working(
    sessions: SessionFactory, clock: Clock, roles: Iterable[str], timing: Timing | None = None
) -> AsyncIterator[Workers]:
    """This process registered as a worker, beating in the background, until the block ends.

    For commands that claim work beside a running `serve` (an organiser's `digest --send`):
    the heartbeat keeps their claims theirs while they send.
    """
    workers = Workers(sessions, clock, timing)
    await workers.register(roles)
    stop = asyncio.Event()
    beating = asyncio.create_task(workers.run(stop))
    try:
        yield workers
    finally:
        stop.set()
        await beating
        await workers.stop("finished")
