"""Putting questions before the expert: one mail, one token, one or many [Q-n] anchors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.answer.tokens import new_route_key, new_token
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import (
    Dispatch,
    NewDispatch,
    NewQuestion,
    NewThread,
    OutboxKind,
    OutboxMail,
    Question,
    Thread,
    dispatch_questions,
)
from qa_mailer.db.ids import allocate_ids, table_of
from qa_mailer.route.mails import MergedView, expert_mail
from qa_mailer.send.outbox import outbox_row
from qa_mailer.templates import Templates


@dataclass(frozen=True)
class Batch:
    """Questions of one session that go to its experts in one mail."""

    session_no: int
    questions: Sequence[tuple[Question | NewQuestion, Thread | NewThread]]
    # The questions merged into those of the batch, by the id of the one they joined.
    merged: Mapping[int, Sequence[MergedView]] = field(default_factory=dict)


async def dispatch(
    tx: AsyncSession,
    config: Config,
    templates: Templates,
    clock: Clock,
    batches: Sequence[Batch],
    ids: Sequence[int] | None = None,
) -> list[NewDispatch]:
    """Record a dispatch per batch and queue its mail to the session's experts.

    ``ids`` are the dispatches' ids, when the caller took them already (see allocate_ids_of).

    Everything is written in the caller's transaction with one statement per table. A question
    already put before the expert fails the insert (dispatch_questions.question_id is unique):
    two processes can never both send it.
    """
    if ids is None:
        ids = await allocate_ids(tx, table_of(Dispatch), len(batches))
    now = clock.now()
    sent = [
        NewDispatch(
            id=number,
            token=new_token(),
            route_key=new_route_key(),
            session_no=batch.session_no,
            experts=",".join(config.session(batch.session_no).experts),
            created_at=now,
            questions=[question for question, _ in batch.questions],
        )
        for number, batch in zip(ids, batches, strict=True)
    ]
    if not sent:
        return sent
    await tx.execute(
        insert(table_of(Dispatch)),
        [
            {
                "id": d.id,
                "token": d.token,
                "route_key": d.route_key,
                "session_no": d.session_no,
                "experts": d.experts,
                "created_at": d.created_at,
            }
            for d in sent
        ],
    )
    await tx.execute(
        insert(dispatch_questions),
        [{"dispatch_id": d.id, "question_id": q.id} for d in sent for q in d.questions],
    )
    await tx.execute(
        insert(table_of(OutboxMail)),
        [
            outbox_row(
                expert_mail(config, templates, clock, d, batch.questions, batch.merged),
                kind=OutboxKind.ROUTE,
                ref=f"D-{d.id}",
                envelope_from=config.address.address,
                now=now,
                question_id=batch.questions[0][0].id if len(batch.questions) == 1 else None,
                dispatch_id=d.id,
            )
            for d, batch in zip(sent, batches, strict=True)
        ],
    )
    return sent
