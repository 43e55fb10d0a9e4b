"""Writing what came of many sent mails in one transaction, under the claims that sent them.

A mail's outcome is written only while this worker still holds its claim (rows locked until
the commit); one whose claim ran out meanwhile is left to whoever took it. Mail that reached
an expert moves its questions from "new" to "with the expert" in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update

from qa_mailer.db import OutboxMail, OutboxState, Question, QuestionState, dispatch_questions
from qa_mailer.db.claims import ClaimedMail
from qa_mailer.db.engine import SessionFactory

log = logging.getLogger("qa_mailer.send")

_OUTBOX = cast(Table, OutboxMail.__table__)


@dataclass
class Outcome:
    """What one attempt at one mail came to, as it is to be written to its row."""

    mail: ClaimedMail
    state: OutboxState
    outcomes: dict[str, dict[str, Any]]
    refused: int
    last_error: str | None
    sent_at: datetime | None = None
    # None keeps the row's own time (a mail that is sent or failed has no next attempt).
    next_attempt_at: datetime | None = None
    accepted_now: bool = False
    # The relay refused for now, or could not be reached: not this mail's own failure.
    relay_failed: bool = False
    # No connection to the relay could be opened at all.
    unreachable: bool = False
    # Put back without being tried: its claim does not count as an attempt.
    untried: bool = False
    # The log lines to write once the outcome is stored: (level, text).
    report: list[tuple[int, str]] = field(default_factory=list)

    def parameters(self, worker: int) -> dict[str, object]:
        return {
            "b_id": self.mail.id,
            "b_worker": worker,
            "b_state": self.state.value,
            "b_outcomes": self.outcomes,
            "b_refused": self.refused,
            "b_last_error": self.last_error,
            "b_sent_at": self.sent_at,
            "b_next": self.next_attempt_at,
            "b_untried": 1 if self.untried else 0,
        }


# One statement for the whole batch, executed once per row with that row's values.
_WRITE = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id == bindparam("b_id"),
        _OUTBOX.c.claimed_by == bindparam("b_worker"),
        _OUTBOX.c.state == OutboxState.SENDING.value,
    )
    .values(
        state=bindparam("b_state", type_=_OUTBOX.c.state.type),
        outcomes=bindparam("b_outcomes", type_=_OUTBOX.c.outcomes.type),
        refused=bindparam("b_refused", type_=_OUTBOX.c.refused.type),
        last_error=bindparam("b_last_error", type_=_OUTBOX.c.last_error.type),
        sent_at=bindparam("b_sent_at", type_=_OUTBOX.c.sent_at.type),
        next_attempt_at=func.coalesce(
            bindparam("b_next", type_=_OUTBOX.c.next_attempt_at.type),
            _OUTBOX.c.next_attempt_at,
            type_=_OUTBOX.c.next_attempt_at.type,
        ),
        attempts=_OUTBOX.c.attempts - bindparam("b_untried", type_=_OUTBOX.c.attempts.type),
        claimed_by=None,
        lease_until=None,
    )
)


async def record_outcomes(sessions: SessionFactory, worker: int, results: list[Outcome]) -> None:
    """Write ``results`` in one transaction, each only if ``worker`` still holds its claim."""
    if not results:
        return
    async with sessions.begin() as tx:
        held = set(
            await tx.scalars(
                select(OutboxMail.id)
                .where(
                    OutboxMail.id.in_([r.mail.id for r in results]),
                    OutboxMail.claimed_by == worker,
                    OutboxMail.state == OutboxState.SENDING,
                )
                .with_for_update()
            )
        )
        writing = [r for r in results if r.mail.id in held]
        if writing:
            await tx.execute(_WRITE, [r.parameters(worker) for r in writing])
        reached = {
            r.mail.dispatch_id for r in writing if r.accepted_now and r.mail.dispatch_id is not None
        }
        if reached:
            # An expert now has these questions: they are no longer "new".
            await tx.execute(
                update(Question)
                .where(
                    Question.id.in_(
                        select(dispatch_questions.c.question_id).where(
                            dispatch_questions.c.dispatch_id.in_(reached)
                        )
                    ),
                    Question.state == QuestionState.NEW,
                )
                .values(state=QuestionState.WITH_EXPERT)
                .execution_options(synchronize_session=False)
            )
    for result in results:
        if result.mail.id not in held:
            log.warning(
                "%s: its claim ran out before the outcome was recorded; another worker "
                "may send it again",
                result.mail.key,
            )
            continue
        for level, text in result.report:
            log.log(level, "%s", text)
