"""Batch mode: a session's questions wait and reach the expert together, in one mail.

A batch goes out when its oldest question has waited ``programme.batch_minutes`` (or at once
with `qa-mailer send-batch`). The expert answers under each [Q-n] in one reply. The waiting
questions are locked while their batch is made (and a question can be in one dispatch only),
so `serve` and `send-batch`, or two `serve`s, never send the same question twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.backoff import every
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import NewDispatch, Question, QuestionState, Thread, dispatch_questions
from qa_mailer.db.engine import SessionFactory
from qa_mailer.route.dispatch import Batch, dispatch
from qa_mailer.route.mails import MergedView
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.route")

# More than this in one mail is hard to answer inline; the rest go in the next mail.
MAX_PER_MAIL = 20
CHECK_SECONDS = 30.0


class BatchDispatcher:
    def __init__(
        self,
        config: Config,
        sessions: SessionFactory,
        templates: Templates,
        clock: Clock,
        on_outbox: Callable[[], None] = lambda: None,
    ):
        self._config = config
        self._sessions = sessions
        self._templates = templates
        self._clock = clock
        self._on_outbox = on_outbox

    async def run(self, stop: asyncio.Event) -> None:
        await every(stop, CHECK_SECONDS, self.send_due, log, "the batch check")

    async def send_due(
        self, *, now: bool = False, session_no: int | None = None
    ) -> list[NewDispatch]:
        """Send every batch that is due (all waiting ones with ``now``); return the dispatches."""
        sent: list[NewDispatch] = []
        for session_config in self._config.sessions:
            if session_config.expert_mail != "batch" or session_no not in (
                None,
                session_config.number,
            ):
                continue
            try:
                sent += await self._send(session_config.number, now=now)
            except IntegrityError:
                log.info("the batch of VC%d was sent by another process", session_config.number)
        if sent:
            self._on_outbox()
        return sent

    async def _send(self, number: int, *, now: bool) -> list[NewDispatch]:
        async with self._sessions.begin() as tx:
            waiting = await waiting_questions(tx, number)
            if not waiting:
                return []
            oldest = min(q.asked_at for q, _ in waiting)
            if not now and oldest + self._config.batch_every > self._clock.now():
                return []
            merged = await merged_into(tx, [q.id for q, _ in waiting])
            batches = [
                Batch(number, waiting[start : start + MAX_PER_MAIL], merged)
                for start in range(0, len(waiting), MAX_PER_MAIL)
            ]
            sent = await dispatch(tx, self._config, self._templates, self._clock, batches)
        log.info("batch of %d question(s) for VC%d queued", len(waiting), number)
        return sent


async def waiting_questions(
    session: AsyncSession, session_no: int
) -> list[tuple[Question, Thread]]:
    """Questions of a session that no mail to the expert has carried yet, oldest first.

    They are locked until the transaction ends; questions another process has locked (it is
    sending them) are skipped.
    """
    rows = await session.execute(
        select(Question, Thread)
        .join(Thread, Question.thread_id == Thread.id)
        .where(
            Thread.session_no == session_no,
            Question.state == QuestionState.NEW,
            ~exists().where(dispatch_questions.c.question_id == Question.id),
        )
        .order_by(Question.id)
        .with_for_update(of=Question, skip_locked=True)
    )
    return [(question, thread) for question, thread in rows]


async def merged_into(
    session: AsyncSession, question_ids: Sequence[int]
) -> dict[int, list[MergedView]]:
    """The questions an organiser merged into each of ``question_ids``, by that question's id."""
    found: dict[int, list[MergedView]] = {}
    rows = await session.execute(
        select(Question.merged_into, Question.id, Thread.participant_name)
        .join(Thread, Question.thread_id == Thread.id)
        .where(Question.merged_into.in_(question_ids))
        .order_by(Question.id)
    )
    for main, question_id, participant in rows:
        if main is not None:
            found.setdefault(main, []).append(MergedView(f"Q-{question_id}", participant))
    return found
