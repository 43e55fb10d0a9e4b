"""What the organisers' commands do, as async functions on an engine (the CLI only prints)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import selectinload

from qa_mailer.answer.desk import AnswerDesk
from qa_mailer.classify.roster import load_roster
from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from qa_mailer.db import Answer, AnswerState, InboundMessage, MessageState, Question
from qa_mailer.db.engine import session_factory
from qa_mailer.digest.deliver import RenderedDigest, produce_digest
from qa_mailer.ingest.store import Envelope, MessageStore
from qa_mailer.send.sender import Sender
from qa_mailer.send.transport import make_transport
from qa_mailer.status import format_status, gather_status
from qa_mailer.templates import Templates


class NotFound(Exception):
    """No such quarantined message, held answer or held message."""


async def make_digest(
    engine: AsyncEngine, config: Config, number: int, *, send: bool
) -> RenderedDigest:
    """Build a session's digest; with ``send``, queue it and deliver it now."""
    sessions, clock = session_factory(engine), SystemClock()
    roster = load_roster(config.roster, config.countries)
    async with sessions.begin() as session:
        rendered = await produce_digest(
            session, config, roster, Templates(config.templates), clock, number, send=send
        )
    if send:
        await deliver_now(engine, config)
    return rendered


async def send_batches(engine: AsyncEngine, config: Config, session_no: int | None) -> list[str]:
    """Send the waiting questions of batch-mode sessions to the experts now."""
    from qa_mailer.route.batch import BatchDispatcher

    dispatcher = BatchDispatcher(
        config, session_factory(engine), Templates(config.templates), SystemClock()
    )
    sent = await dispatcher.send_due(now=True, session_no=session_no)
    await deliver_now(engine, config)
    return [f"VC{d.session_no}: {len(d.questions)} question(s) to {d.experts}" for d in sent]


async def deliver_now(engine: AsyncEngine, config: Config) -> int:
    """Deliver what is due in the outbox from this process (a running `serve` would, too)."""
    transport = make_transport(config.outgoing.transport, config.outgoing.maildir, config.smtp)
    return await Sender(
        session_factory(engine), transport, config.outgoing, SystemClock()
    ).deliver_due()


async def status_text(engine: AsyncEngine, config: Config) -> str:
    async with session_factory(engine)() as session:
        return format_status(await gather_status(session), config)


async def ingest_files(engine: AsyncEngine, files: Sequence[Path]) -> list[str]:
    """Store each file as a received message; duplicates are reported, not stored twice."""
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
        message = await session.get(InboundMessage, message_id)
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
        await session.execute(
            update(InboundMessage)
            .where(InboundMessage.id.in_(found))
            .values(state=MessageState.RECEIVED, reason=None, traceback=None, processed_at=None)
        )
    return found


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
) -> list[Answer]:
    """Publish (approve) or reject held answers; a reply is done when none of it is held.

    All in one transaction: an unknown id changes nothing. Approved answers are delivered
    once, at the end.
    """
    sessions, clock = session_factory(engine), SystemClock()
    desk = AnswerDesk(config, Templates(config.templates), clock)
    decided: list[Answer] = []
    async with sessions.begin() as session:
        for answer_id in answer_ids:
            answer = await session.scalar(
                select(Answer)
                .where(Answer.id == answer_id, Answer.state == AnswerState.HELD)
                .options(selectinload(Answer.question).selectinload(Question.thread))
            )
            if answer is None:
                raise NotFound(f"no held answer A-{answer_id}")
            if approve:
                await desk.publish(session, answer)
                answer.reason = f"approved by an organiser ({answer.reason})"
            else:
                answer.state = AnswerState.REJECTED
            await session.flush()
            still_held = await session.scalar(
                select(Answer.id).where(
                    Answer.message_id == answer.message_id, Answer.state == AnswerState.HELD
                )
            )
            if still_held is None:
                await session.execute(
                    update(InboundMessage)
                    .where(
                        InboundMessage.id == answer.message_id,
                        InboundMessage.state == MessageState.HELD,
                    )
                    .values(state=MessageState.PROCESSED)
                )
            decided.append(answer)
    if approve:
        await deliver_now(engine, config)
    return decided
