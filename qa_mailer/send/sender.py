"""Delivers the outbox: each due mail is sent, then marked sent; failures wait and retry.

A crash after sending and before marking sends the same mail again, with the same Message-ID,
which receiving systems and mail clients recognise as the same message. Nothing is ever sent
that is not in the outbox first.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update

from qa_mailer.backoff import delay_after, wait_for_wakeup
from qa_mailer.clock import Clock
from qa_mailer.config import OutgoingConfig
from qa_mailer.db import OutboxMail, OutboxState, Question, QuestionState, dispatch_questions
from qa_mailer.db.engine import SessionFactory
from qa_mailer.send.transport import DeliveryError, PartialDelivery, Transport

log = logging.getLogger("qa_mailer.send")

BATCH = 50
SEND_TIMEOUT = 120.0


class Sender:
    """The outbox's only reader. One per database."""

    def __init__(
        self,
        sessions: SessionFactory,
        transport: Transport,
        config: OutgoingConfig,
        clock: Clock,
        rng: Callable[[], float] = random.random,
    ):
        self._sessions = sessions
        self._transport = transport
        self._config = config
        self._clock = clock
        self._rng = rng
        self.wakeup = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; wake on new mail, on the next retry time, or every minute."""
        while not stop.is_set():
            self.wakeup.clear()
            try:
                await self.deliver_due()
                delay = await self._seconds_to_next_due()
            except Exception:
                log.exception("outbox pass failed (is the database reachable?); retrying shortly")
                delay = 5.0
            await wait_for_wakeup(stop, self.wakeup, delay)

    async def deliver_due(self) -> int:
        """Send every mail that is due now; return how many were sent."""
        sent = 0
        while True:
            async with self._sessions() as session:
                due = list(
                    await session.scalars(
                        select(OutboxMail)
                        .where(
                            OutboxMail.state == OutboxState.QUEUED,
                            OutboxMail.next_attempt_at <= self._clock.now(),
                        )
                        .order_by(OutboxMail.id)
                        .limit(BATCH)
                    )
                )
            for mail in due:
                sent += await self._deliver(mail)
            if len(due) < BATCH:
                return sent

    async def _deliver(self, mail: OutboxMail) -> int:
        recipients = [r for r in mail.recipients.split(",") if r]
        error: str | None = None
        try:
            await asyncio.wait_for(
                self._transport.send(mail.envelope_from, recipients, mail.raw), SEND_TIMEOUT
            )
        except PartialDelivery as exc:
            error = f"refused for some recipients: {exc}"
        except (DeliveryError, TimeoutError) as exc:
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            await self._failed(mail, str(exc) or type(exc).__name__, permanent)
            return 0
        await self._sent(mail, error)
        return 1

    async def _sent(self, mail: OutboxMail, error: str | None) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMail)
                .where(OutboxMail.id == mail.id)
                .values(
                    state=OutboxState.SENT,
                    sent_at=self._clock.now(),
                    attempts=mail.attempts + 1,
                    last_error=error,
                )
            )
            if mail.dispatch_id is not None:
                # The expert now has the question: it is no longer "new".
                await session.execute(
                    update(Question)
                    .where(
                        Question.id.in_(
                            select(dispatch_questions.c.question_id).where(
                                dispatch_questions.c.dispatch_id == mail.dispatch_id
                            )
                        ),
                        Question.state == QuestionState.NEW,
                    )
                    .values(state=QuestionState.WITH_EXPERT)
                )
        log.info("sent %s %s to %s", mail.kind, mail.message_id, mail.recipients)

    async def _failed(self, mail: OutboxMail, error: str, permanent: bool) -> None:
        attempts = mail.attempts + 1
        give_up = permanent or attempts >= self._config.max_attempts
        delay = delay_after(
            attempts, self._config.retry_base_seconds, self._config.retry_max_seconds, self._rng
        )
        async with self._sessions.begin() as session:
            await session.execute(
                update(OutboxMail)
                .where(OutboxMail.id == mail.id)
                .values(
                    state=OutboxState.FAILED if give_up else OutboxState.QUEUED,
                    attempts=attempts,
                    last_error=error[:2000],
                    next_attempt_at=self._clock.now()
                    if give_up
                    else self._clock.now() + _seconds(delay),
                )
            )
        if give_up:
            log.error(
                "gave up on %s %s after %d attempts: %s",
                mail.kind,
                mail.message_id,
                attempts,
                error,
            )
        else:
            log.warning(
                "%s %s failed (attempt %d), retry in %.0f s: %s",
                mail.kind,
                mail.message_id,
                attempts,
                delay,
                error,
            )

    async def _seconds_to_next_due(self) -> float:
        async with self._sessions() as session:
            next_due = await session.scalar(
                select(OutboxMail.next_attempt_at)
                .where(OutboxMail.state == OutboxState.QUEUED)
                .order_by(OutboxMail.next_attempt_at)
                .limit(1)
            )
        if next_due is None:
            return 60.0
        return min(60.0, max(0.05, (next_due - self._clock.now()).total_seconds()))


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
