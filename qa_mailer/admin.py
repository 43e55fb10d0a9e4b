"""What the organisers' commands do, as async functions on an engine (the CLI only prints).

Each function imports the stages it drives (the answer desk, digests, the sender) itself:
listing the quarantine or the held replies then loads the models alone, not Jinja2, the
mail parser and the reply parser (tests/integration/test_startup.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import selectinload

from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    AnswerState,
    InboundMessage,
    MessageState,
    OutboxMail,
    OutboxState,
    RawMessage,
    Role,
    UnknownTokenReply,
)
from qa_mailer.db.engine import SessionFactory, session_factory
from qa_mailer.errors import NotFound as NotFound
from qa_mailer.workers import Timing, live_workers, working

if TYPE_CHECKING:
    from qa_mailer.digest.deliver import RenderedDigest
    from qa_mailer.digest.programme import RenderedProgramme

# How long a command waits for a running `serve` to send what the command queued, to report it.
HAND_OVER_SECONDS = 5.0


class HeadersOnly(NotFound):
    """A message over the size limit, kept by its headers alone: there is nothing to process."""


async def make_digest(
    engine: AsyncEngine, config: Config, number: int, *, send: bool
) -> tuple[RenderedDigest, str | None]:
    """Build a session's digest; with ``send``, queue it and see it sent (see hand_over)."""
    from qa_mailer.classify.roster import load_roster
    from qa_mailer.digest.deliver import produce_digest
    from qa_mailer.templates import Templates

    sessions, clock = session_factory(engine), SystemClock()
    roster = load_roster(config.roster, config.countries)
    async with sessions.begin() as session:
        rendered = await produce_digest(
            session, config, roster, Templates.of(config), clock, number, send=send
        )
    if not send or rendered.outbox_id is None:
        return rendered, None
    return rendered, await hand_over(engine, config, [rendered.outbox_id])


async def make_programme(
    engine: AsyncEngine, config: Config, *, send: bool
) -> tuple[RenderedProgramme, str | None]:
    """Build the programme report; with ``send``, queue it and see it sent (see hand_over)."""
    from qa_mailer.classify.roster import load_roster
    from qa_mailer.digest.programme import produce_programme
    from qa_mailer.templates import Templates

    sessions, clock = session_factory(engine), SystemClock()
    roster = load_roster(config.roster, config.countries)
    async with sessions.begin() as db:
        rendered, outbox_id = await produce_programme(
            db, config, roster, Templates.of(config), clock, send=send
        )
    if outbox_id is None:
        return rendered, None
    return rendered, await hand_over(engine, config, [outbox_id])


async def send_batches(
    engine: AsyncEngine, config: Config, session_no: int | None
) -> tuple[list[str], str | None]:
    """Queue the waiting questions of batch-mode sessions to the experts now, and send them."""
    from qa_mailer.route.batch import BatchDispatcher
    from qa_mailer.templates import Templates

    sessions = session_factory(engine)
    dispatcher = BatchDispatcher(config, sessions, Templates.of(config), SystemClock())
    sent = await dispatcher.send_due(now=True, session_no=session_no)
    lines = [f"VC{d.session_no}: {len(d.questions)} question(s) to {d.experts}" for d in sent]
    if not sent:
        return lines, None
    async with sessions() as tx:
        ids = list(
            await tx.scalars(
                select(OutboxMail.id).where(OutboxMail.dispatch_id.in_([d.id for d in sent]))
            )
        )
    return lines, await hand_over(engine, config, ids)


async def hand_over(engine: AsyncEngine, config: Config, outbox_ids: Sequence[int]) -> str:
    """See the mail a command queued on its way, without racing a running `serve`.

    A live worker with the send role was woken by the commit and sends it (its claim keeps
    any other process off it); the command waits a few seconds to report what happened.
    With no such worker, the command sends its own mail itself, under the same claims.
    """
    from qa_mailer.send.sender import Sender
    from qa_mailer.send.transport import make_transport

    sessions, clock = session_factory(engine), SystemClock()
    timing = Timing.of(config.workers)
    async with sessions() as tx:
        senders = [
            worker
            for worker in await live_workers(
                tx, clock.now(), timedelta(seconds=timing.dead_after_seconds)
            )
            if Role.SEND in worker.roles.split(",")
        ]
    if senders:
        counts = await _wait_for_delivery(sessions, outbox_ids, HAND_OVER_SECONDS)
        worker = senders[0]
        return (
            f"handed to the running service (worker {worker.id}, pid {worker.pid} on "
            f"{worker.host}): {_describe(counts)}"
        )
    transport = make_transport(config.outgoing.transport, config.outgoing.maildir, config.smtp)
    async with working(sessions, clock, ["cli"], timing) as workers:
        await Sender(sessions, transport, config.outgoing, clock, workers).deliver_due(
            only=outbox_ids
        )
    return _describe(await _delivery_counts(sessions, outbox_ids))


# The key under which _delivery_counts counts sent mail that some recipients refused.
PARTLY_REFUSED = "partly refused"


async def _delivery_counts(sessions: SessionFactory, ids: Sequence[int]) -> dict[str, int]:
    async with sessions() as tx:
        rows = await tx.execute(
            select(
                OutboxMail.state,
                func.count(),
                func.count().filter(OutboxMail.refused > 0),
            )
            .where(OutboxMail.id.in_(ids))
            .group_by(OutboxMail.state)
        )
        counts: dict[str, int] = {}
        for state, count, refused in rows:
            counts[state] = count
            if refused and state == OutboxState.SENT:
                counts[PARTLY_REFUSED] = refused
        return counts


async def _wait_for_delivery(
    sessions: SessionFactory, ids: Sequence[int], seconds: float
) -> dict[str, int]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        counts = await _delivery_counts(sessions, ids)
        waiting = counts.get(OutboxState.QUEUED, 0) + counts.get(OutboxState.SENDING, 0)
        if not waiting or asyncio.get_running_loop().time() > deadline:
            return counts
        await asyncio.sleep(0.1)


def _describe(counts: dict[str, int]) -> str:
    order = (OutboxState.SENT, OutboxState.QUEUED, OutboxState.SENDING, OutboxState.FAILED)
    parts = [f"{counts[state]} {state}" for state in order if counts.get(state)]
    if counts.get(PARTLY_REFUSED):
        parts[0] += f" ({counts[PARTLY_REFUSED]} {PARTLY_REFUSED})"
    text = ", ".join(parts) or "nothing to send"
    if (
        counts.get(OutboxState.QUEUED)
        or counts.get(OutboxState.FAILED)
        or counts.get(PARTLY_REFUSED)
    ):
        text += " (`qa-mailer status` shows the outbox; queued mail is retried)"
    return text


async def ingest_files(engine: AsyncEngine, files: Sequence[Path]) -> list[str]:
    """Store each file as a received message; duplicates are reported, not stored twice."""
    from qa_mailer.ingest.store import Envelope, MessageStore

    store = MessageStore(session_factory(engine), SystemClock(), on_stored=lambda: None)
    lines = []
    for path in files:
        stored = await store.store(path.read_bytes(), Envelope(source="file"))
        verdict = "already stored as" if stored.duplicate else "stored as"
        lines.append(f"{path}: {verdict} message {stored.id}")
    return lines


@dataclass(frozen=True)
class MessageSummary:
    id: int
    received_at: datetime
    sender: str
    subject: str
    reason: str


async def list_messages(engine: AsyncEngine, state: MessageState) -> list[MessageSummary]:
    async with session_factory(engine)() as session:
        rows = await session.scalars(
            select(InboundMessage).where(InboundMessage.state == state).order_by(InboundMessage.id)
        )
        return [
            MessageSummary(
                m.id,
                m.received_at,
                m.sender or m.envelope_from or "?",
                m.subject or "",
                m.reason or "",
            )
            for m in rows
        ]


async def show_message(engine: AsyncEngine, message_id: int) -> InboundMessage:
    async with session_factory(engine)() as session:
        message = await session.get(
            InboundMessage, message_id, options=[selectinload(InboundMessage.raw_mail)]
        )
    if message is None:
        raise NotFound(f"no message {message_id}")
    return message


async def release_messages(
    engine: AsyncEngine, ids: Sequence[int] | None, state: MessageState
) -> list[int]:
    """Put messages in ``state`` back to `received`; None releases all of them."""
    async with session_factory(engine).begin() as session:
        query = select(InboundMessage.id).where(InboundMessage.state == state)
        if ids is not None:
            query = query.where(InboundMessage.id.in_(ids))
        found = list(await session.scalars(query))
        missing = sorted(set(ids or []) - set(found))
        if missing:
            raise NotFound(f"not {state}: message(s) {', '.join(map(str, missing))}")
        # Processing a message kept by its headers alone would answer an empty question; it
        # stays quarantined (the mail itself is in the mailbox) and --all passes it over.
        partial = set(
            await session.scalars(
                select(InboundMessage.id)
                .join(RawMessage)
                .where(
                    InboundMessage.id.in_(found),
                    func.length(RawMessage.raw) < InboundMessage.size,
                )
            )
        )
        if partial and ids is not None:
            raise HeadersOnly(
                f"message(s) {', '.join(map(str, sorted(partial)))} were over the size limit: "
                "only their headers are kept, so there is nothing to process"
            )
        found = [id_ for id_ in found if id_ not in partial]
        await session.execute(
            update(InboundMessage)
            .where(InboundMessage.id.in_(found))
            .values(
                state=MessageState.RECEIVED,
                reason=None,
                traceback=None,
                processed_at=None,
                attempts=0,
                # Held or quarantined again, it is news to the organisers again.
                organisers_told_at=None,
                claimed_by=None,
                lease_until=None,
            )
        )
    return found


@dataclass(frozen=True)
class UnknownTokenSender:
    """A sender whose replies with unknown tokens wait for an organiser, shown as one line."""

    sender: str
    replies: int  # every unknown-token reply still held or ignored over the limit
    held: list[int]  # ids of the messages still held
    first: datetime
    last: datetime


async def unknown_token_senders(engine: AsyncEngine) -> list[UnknownTokenSender]:
    """Senders with held replies whose tokens matched nothing, each with all such replies."""
    async with session_factory(engine)() as session:
        rows = await session.execute(
            select(
                UnknownTokenReply.sender,
                UnknownTokenReply.ignored,
                UnknownTokenReply.recorded_at,
                InboundMessage.id,
                InboundMessage.state,
            )
            .join(InboundMessage, InboundMessage.id == UnknownTokenReply.message_id)
            .where(
                (InboundMessage.state == MessageState.HELD)
                | ((InboundMessage.state == MessageState.IGNORED) & UnknownTokenReply.ignored)
            )
            .order_by(UnknownTokenReply.sender, InboundMessage.id)
        )
        grouped: dict[str, list[tuple[int, str, datetime]]] = {}
        for sender, _, at, message_id, state in rows:
            grouped.setdefault(sender, []).append((message_id, state, at))
    return [
        UnknownTokenSender(
            sender=sender,
            replies=len(items),
            held=[i for i, state, _ in items if state == MessageState.HELD],
            first=min(at for _, _, at in items),
            last=max(at for _, _, at in items),
        )
        for sender, items in grouped.items()
        if any(state == MessageState.HELD for _, state, _ in items)
    ]


async def dismiss_message(engine: AsyncEngine, message_id: int) -> None:
    async with session_factory(engine).begin() as session:
        message = await session.get(InboundMessage, message_id)
        if message is None or message.state != MessageState.HELD:
            raise NotFound(f"no held message {message_id}")
        message.state, message.reason = (
            MessageState.IGNORED,
            f"dismissed by an organiser ({message.reason})",
        )


async def held_answers(engine: AsyncEngine) -> list[Answer]:
    async with session_factory(engine)() as session:
        return list(
            await session.scalars(
                select(Answer)
                .where(Answer.state == AnswerState.HELD)
                .options(selectinload(Answer.question))
                .order_by(Answer.id)
            )
        )


async def decide_answers(
    engine: AsyncEngine, config: Config, answer_ids: Sequence[int], *, approve: bool
) -> tuple[list[Answer], str | None]:
    """Publish (approve) or reject held answers; a reply is done when none of it is held.

    All in one transaction: an unknown id changes nothing. Approved answers are delivered
    once, at the end.
    """
    from qa_mailer.answer.decide import decide
    from qa_mailer.answer.desk import AnswerDesk
    from qa_mailer.templates import Templates

    sessions, clock = session_factory(engine), SystemClock()
    desk = AnswerDesk(config, Templates.of(config), clock)
    decided: list[Answer] = []
    queued: list[OutboxMail] = []
    async with sessions.begin() as session:
        for answer_id in answer_ids:
            decision = await decide(session, desk, answer_id, approve=approve)
            if not decision.changed:
                raise NotFound(f"no held answer A-{answer_id}")
            queued.extend(decision.queued)
            assert decision.answer is not None
            decided.append(decision.answer)
    report = await hand_over(engine, config, [row.id for row in queued]) if queued else None
    return decided, report
