"""Claiming work: a row is taken by one worker, with a lease, before anyone works on it.

A claim is one UPDATE that moves rows to their working state (`processing`, `sending`), names
the worker and sets a lease. On PostgreSQL the candidate rows are locked with FOR UPDATE SKIP
LOCKED, so processes neither wait for each other nor take the same row; on SQLite every
transaction holds the database's write lock from its start (see db/engine.py), so claims
happen one at a time. A row whose lease ran out (its worker died, or was presumed dead) is free
again; each claim counts an attempt, and work that was claimed too often without finishing is
given up instead of retried forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.db.message import InboundMessage, MessageState, RawMessage
from qa_mailer.db.outbox import OutboxMail, OutboxState

# A message claimed this many times without being finished is quarantined (its processing
# keeps killing or stalling the worker); Mailman gives up on a queue entry the same way.
MAX_MESSAGE_ATTEMPTS = 3


@dataclass(frozen=True)
class ClaimedMessage:
    """A message as the processing stage reads it: what arrived and how."""

    id: int
    attempts: int
    raw: bytes
    source: str
    envelope_from: str | None
    envelope_to: str | None
    received_at: datetime
    rfc_message_id: str | None


@dataclass(frozen=True)
class ClaimedMail:
    """An outgoing mail as the sender reads it."""

    id: int
    key: str
    kind: str
    rfc_message_id: str
    envelope_from: str
    recipients: list[str]
    raw: bytes
    attempts: int
    dispatch_id: int | None
    # What the relay said to each recipient on earlier attempts (OutboxMail.outcomes).
    outcomes: dict[str, dict[str, Any]]


async def claim_messages(
    tx: AsyncSession, worker: int, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedMessage]:
    """Claim up to ``limit`` received messages, oldest first.

    A message being retried (its earlier claim ran out, or it was put back after a failure) is
    claimed alone: if it is what kills its worker, it must not take a batch of others with it.
    """
    retried = or_(
        and_(InboundMessage.state == MessageState.RECEIVED, InboundMessage.attempts > 0),
        and_(
            InboundMessage.state == MessageState.PROCESSING,
            InboundMessage.lease_until <= now,
        ),
    )
    claimed = await _claim_messages(tx, retried, worker, now + lease, 1)
    if claimed:
        return claimed
    fresh = and_(InboundMessage.state == MessageState.RECEIVED, InboundMessage.attempts == 0)
    return await _claim_messages(tx, fresh, worker, now + lease, limit)


async def claim_message(
    tx: AsyncSession, message_id: int, worker: int, now: datetime, lease: timedelta
) -> ClaimedMessage | None:
    """Claim one message by id, if it is waiting (received, or its lease ran out)."""
    waiting = and_(
        InboundMessage.id == message_id,
        or_(
            InboundMessage.state == MessageState.RECEIVED,
            and_(
                InboundMessage.state == MessageState.PROCESSING,
                InboundMessage.lease_until <= now,
            ),
        ),
    )
    claimed = await _claim_messages(tx, waiting, worker, now + lease, 1)
    return claimed[0] if claimed else None


async def _claim_messages(
    tx: AsyncSession,
    condition: ColumnElement[bool],
    worker: int,
    until: datetime,
    limit: int,
) -> list[ClaimedMessage]:
    candidates = (
        select(InboundMessage.id)
        .where(condition)
        .order_by(InboundMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = await tx.execute(
        update(InboundMessage)
        .where(InboundMessage.id.in_(candidates.scalar_subquery()))
        .values(
            state=MessageState.PROCESSING,
            claimed_by=worker,
            lease_until=until,
            attempts=InboundMessage.attempts + 1,
        )
        .returning(
            InboundMessage.id,
            InboundMessage.attempts,
            InboundMessage.source,
            InboundMessage.envelope_from,
            InboundMessage.envelope_to,
            InboundMessage.received_at,
            InboundMessage.rfc_message_id,
        )
        .execution_options(synchronize_session=False)
    )
    claimed = {row.id: row for row in rows}
    if not claimed:
        return []
    raws = await tx.execute(
        select(RawMessage.message_id, RawMessage.raw)
        .where(RawMessage.message_id.in_(claimed))
        .order_by(RawMessage.message_id)
    )
    return [ClaimedMessage(**claimed[id_]._asdict(), raw=raw) for id_, raw in raws]


async def owned_messages(tx: AsyncSession, ids: list[int], worker: int) -> set[int]:
    """Which of ``ids`` this worker still holds, locked until the transaction ends.

    A claim can be lost (the lease ran out and another worker took the message); the work
    done under a lost claim must not be committed.
    """
    rows = await tx.scalars(
        select(InboundMessage.id)
        .where(
            InboundMessage.id.in_(ids),
            InboundMessage.claimed_by == worker,
            InboundMessage.state == MessageState.PROCESSING,
        )
        .with_for_update()
    )
    return set(rows)


async def claim_mail(
    tx: AsyncSession,
    worker: int,
    now: datetime,
    lease: timedelta,
    limit: int,
    only: Sequence[int] | None = None,
) -> list[ClaimedMail]:
    """Claim up to ``limit`` outgoing mails that are due, oldest first; each claim is an attempt.

    ``only`` restricts the claim to those outbox rows (a command delivering what it queued).
    """
    due = or_(
        and_(OutboxMail.state == OutboxState.QUEUED, OutboxMail.next_attempt_at <= now),
        and_(OutboxMail.state == OutboxState.SENDING, OutboxMail.lease_until <= now),
    )
    if only is not None:
        due = and_(due, OutboxMail.id.in_(only))
    candidates = (
        select(OutboxMail.id)
        .where(due)
        .order_by(OutboxMail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = await tx.execute(
        update(OutboxMail)
        .where(OutboxMail.id.in_(candidates.scalar_subquery()))
        .values(
            state=OutboxState.SENDING,
            claimed_by=worker,
            lease_until=now + lease,
            attempts=OutboxMail.attempts + 1,
        )
        .returning(
            OutboxMail.id,
            OutboxMail.key,
            OutboxMail.kind,
            OutboxMail.rfc_message_id,
            OutboxMail.envelope_from,
            OutboxMail.recipients,
            OutboxMail.raw,
            OutboxMail.attempts,
            OutboxMail.dispatch_id,
            OutboxMail.outcomes,
        )
        .execution_options(synchronize_session=False)
    )
    return sorted((ClaimedMail(**row._asdict()) for row in rows), key=lambda m: m.id)


async def release_mail(tx: AsyncSession, worker: int, ids: Sequence[int]) -> None:
    """Put claimed mails back in the queue untried: free at once, their claim not counted."""
    await tx.execute(
        update(OutboxMail)
        .where(
            OutboxMail.id.in_(ids),
            OutboxMail.claimed_by == worker,
            OutboxMail.state == OutboxState.SENDING,
        )
        .values(
            state=OutboxState.QUEUED,
            claimed_by=None,
            lease_until=None,
            attempts=OutboxMail.attempts - 1,
        )
        .execution_options(synchronize_session=False)
    )
