"""What the answer desk reads and records: the dispatch a reply answers, earlier answers, and
the count of unknown tokens per sender."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from qa_mailer.answer.tokens import ReplyKeys
from qa_mailer.db import Answer, AnswerState, Dispatch, Question, UnknownTokenReply

UNKNOWN_TOKEN = "the reply token matches no mail we sent to an expert"
# Unknown tokens are counted per sender over this window.
UNKNOWN_TOKEN_WINDOW = timedelta(hours=1)


async def find_dispatch(tx: AsyncSession, keys: ReplyKeys) -> tuple[Dispatch, bool] | None:
    """The dispatch a reply answers, and whether the reply proved it with the token.

    A token wins over a reference: a reply to a receipt, or one that quotes several of our
    mails, is matched by the address it was sent to.
    """
    for column, values, proven in (
        (Dispatch.token, keys.tokens, True),
        (Dispatch.route_key, keys.route_keys, False),
    ):
        if not values:
            continue
        dispatch = await tx.scalar(
            select(Dispatch)
            .where(column.in_(values))
            .options(selectinload(Dispatch.questions).selectinload(Question.thread))
            .order_by(Dispatch.id.desc())
        )
        if dispatch is not None:
            return dispatch, proven
    return None


async def earlier_answers(tx: AsyncSession, question_ids: Sequence[int]) -> dict[int, list[Answer]]:
    """Published and held answers of these questions, by question."""
    if not question_ids:
        return {}
    rows = await tx.scalars(
        select(Answer)
        .where(
            Answer.question_id.in_(question_ids),
            Answer.state.in_((AnswerState.PUBLISHED, AnswerState.HELD)),
        )
        .order_by(Answer.id)
    )
    found: dict[int, list[Answer]] = {}
    for answer in rows:
        found.setdefault(answer.question_id, []).append(answer)
    return found


async def recent_unknown_tokens(
    tx: AsyncSession, sender: str, now: datetime, *, exclude: int
) -> int:
    """How many replies with unknown tokens ``sender`` sent within the window before ``now``."""
    count = await tx.scalar(
        select(func.count())
        .select_from(UnknownTokenReply)
        .where(
            UnknownTokenReply.sender == sender,
            UnknownTokenReply.recorded_at > now - UNKNOWN_TOKEN_WINDOW,
            UnknownTokenReply.message_id != exclude,
        )
    )
    return int(count or 0)


async def record_unknown_token(
    tx: AsyncSession, message_id: int, sender: str, now: datetime, *, ignored: bool
) -> None:
    """Record a reply with an unknown token (once per message, however often it is processed)."""
    existing = await tx.scalar(
        select(UnknownTokenReply.id).where(UnknownTokenReply.message_id == message_id)
    )
    if existing is None:
        tx.add(
            UnknownTokenReply(
                message_id=message_id, sender=sender, recorded_at=now, ignored=ignored
            )
        )
        await tx.flush()
        return
    await tx.execute(
        update(UnknownTokenReply)
        .where(UnknownTokenReply.id == existing)
        .values(recorded_at=now, ignored=ignored)
    )
