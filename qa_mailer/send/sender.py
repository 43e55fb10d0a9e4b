"""Delivers the outbox: due mails are claimed, sent, then marked; failures wait and retry.

A mail is claimed before it is sent, so two processes (two `serve`s, or an organiser's command
beside one) never send the same row. A mail claim is a lease the sender renews while it works
through its batch; it sends a mail only while the lease will outlast the send, and nobody
takes a claim before its lease has run out, so even a process wrongly thought dead cannot
race another on the same mail. A crash after sending and before marking sends the same mail
again once the lease runs out, with the same Message-ID, which receiving systems and mail
clients recognise as the same message. Nothing is ever sent that is not in the outbox first.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import func, select, update

from qa_mailer.backoff import delay_after, wait_for_wakeup
from qa_mailer.clock import Clock
from qa_mailer.config import OutgoingConfig
from qa_mailer.db import OutboxMail, OutboxState, Question, QuestionState, dispatch_questions
from qa_mailer.db.claims import ClaimedMail, claim_mail
from qa_mailer.db.engine import SessionFactory
from qa_mailer.send.transport import DeliveryError, PartialDelivery, Transport
from qa_mailer.workers import Workers

log = logging.getLogger("qa_mailer.send")

BATCH = 20


class Sender:
    """Claims due mail from the outbox and hands it to the transport."""

    def __init__(
        self,
        sessions: SessionFactory,
        transport: Transport,
        config: OutgoingConfig,
        clock: Clock,
        workers: Workers,
        rng: Callable[[], float] = random.random,
    ):
        self._sessions = sessions
        self._transport = transport
        self._config = config
        self._clock = clock
        self._workers = workers
        self._rng = rng
        self.wakeup = asyncio.Event()
        # The longest one delivery may take, and how long a claim lasts unless renewed: long
        # enough to survive a few missed heartbeats, short enough that a dead process's
        # mail goes out soon after.
        self.send_timeout = timedelta(seconds=transport.timeout_seconds)
        self.lease = self.send_timeout + timedelta(seconds=workers.timing.dead_after_seconds)
        self._valid_until = clock.now()

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

    async def deliver_due(self, only: Sequence[int] | None = None) -> int:
        """Send every mail that is due now (of ``only``, if given); return how many were sent."""
        sent = 0
        while True:
            now = self._clock.now()
            async with self._sessions.begin() as tx:
                claimed = await claim_mail(tx, self._workers.id, now, self.lease, BATCH, only)
            self._valid_until = now + self.lease
            renewing = asyncio.create_task(self._renew([mail.id for mail in claimed]))
            try:
                for mail in claimed:
                    if self._clock.now() + self.send_timeout > self._valid_until:
                        # The claim could run out mid-send: leave the rest to whoever takes
                        # them once it has (this process included).
                        log.warning("mail claims ran short; %s waits for its lease", mail.key)
                        return sent
                    sent += await self._deliver(mail)
            finally:
                renewing.cancel()
            if len(claimed) < BATCH:
                return sent

    async def _renew(self, ids: list[int]) -> None:
        """Keep this batch's claims while it is being sent (a claim nobody renews runs out)."""
        while True:
            await asyncio.sleep(self._workers.timing.heartbeat_seconds)
            now = self._clock.now()
            try:
                async with self._sessions.begin() as tx:
                    await tx.execute(
                        update(OutboxMail)
                        .where(
                            OutboxMail.id.in_(ids),
                            OutboxMail.claimed_by == self._workers.id,
                            OutboxMail.state == OutboxState.SENDING,
                            # Only a claim that has not run out is still ours to renew.
                            OutboxMail.lease_until > now,
                        )
                        .values(lease_until=now + self.lease)
                        .execution_options(synchronize_session=False)
                    )
            except Exception:
                log.exception("could not renew mail claims; sending stops when they run short")
                continue
            self._valid_until = now + self.lease

    async def _deliver(self, mail: ClaimedMail) -> int:
        recipients = [r for r in mail.recipients.split(",") if r]
        error: str | None = None
        try:
            await asyncio.wait_for(
                self._transport.send(mail.envelope_from, recipients, mail.raw, delivery_name(mail)),
                self.send_timeout.total_seconds(),
            )
        except PartialDelivery as exc:
            error = f"refused for some recipients: {exc}"
        except (DeliveryError, TimeoutError) as exc:
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            await self._failed(mail, str(exc) or type(exc).__name__, permanent)
            return 0
        except Exception as exc:
            # Whatever goes wrong with one mail fails that mail, never the whole outbox.
            log.exception("sending %s %s failed unexpectedly", mail.kind, mail.rfc_message_id)
            await self._failed(mail, f"{type(exc).__name__}: {exc}", permanent=False)
            return 0
        await self._sent(mail, error)
        return 1

    def _ours(self, mail: ClaimedMail) -> list[object]:
        return [
            OutboxMail.id == mail.id,
            OutboxMail.claimed_by == self._workers.id,
            OutboxMail.state == OutboxState.SENDING,
        ]

    async def _sent(self, mail: ClaimedMail, error: str | None) -> None:
        async with self._sessions.begin() as tx:
            marked = await tx.execute(
                update(OutboxMail)
                .where(*self._ours(mail))  # type: ignore[arg-type]
                .values(
                    state=OutboxState.SENT,
                    sent_at=self._clock.now(),
                    last_error=error,
                    claimed_by=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            if marked.rowcount == 0:  # type: ignore[attr-defined]
                log.warning(
                    "%s %s was sent but its claim had run out: another worker may send it again",
                    mail.kind,
                    mail.rfc_message_id,
                )
                return
            if mail.dispatch_id is not None:
                # The expert now has the question: it is no longer "new".
                await tx.execute(
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
                    .execution_options(synchronize_session=False)
                )
        log.info("sent %s %s to %s", mail.kind, mail.rfc_message_id, mail.recipients)

    async def _failed(self, mail: ClaimedMail, error: str, permanent: bool) -> None:
        attempts = mail.attempts
        give_up = permanent or attempts >= self._config.max_attempts
        delay = delay_after(
            attempts, self._config.retry_base_seconds, self._config.retry_max_seconds, self._rng
        )
        now = self._clock.now()
        async with self._sessions.begin() as tx:
            await tx.execute(
                update(OutboxMail)
                .where(*self._ours(mail))  # type: ignore[arg-type]
                .values(
                    state=OutboxState.FAILED if give_up else OutboxState.QUEUED,
                    last_error=error[:2000],
                    next_attempt_at=now if give_up else now + timedelta(seconds=delay),
                    claimed_by=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
        if give_up:
            log.error(
                "gave up on %s %s after %d attempts: %s",
                mail.kind,
                mail.rfc_message_id,
                attempts,
                error,
            )
        else:
            log.warning(
                "%s %s failed (attempt %d), retry in %.0f s: %s",
                mail.kind,
                mail.rfc_message_id,
                attempts,
                delay,
                error,
            )

    async def _seconds_to_next_due(self) -> float:
        async with self._sessions() as tx:
            next_retry = await tx.scalar(
                select(func.min(OutboxMail.next_attempt_at)).where(
                    OutboxMail.state == OutboxState.QUEUED
                )
            )
            next_reclaim = await tx.scalar(
                select(func.min(OutboxMail.lease_until)).where(
                    OutboxMail.state == OutboxState.SENDING
                )
            )
        due = [moment for moment in (next_retry, next_reclaim) if moment is not None]
        if not due:
            return 60.0
        return min(60.0, max(0.05, (min(due) - self._clock.now()).total_seconds()))


def delivery_name(mail: ClaimedMail) -> str:
    """A name for ``mail`` that is the same on every attempt and unique across databases."""
    digest = hashlib.sha256(mail.rfc_message_id.encode("utf-8", "replace")).hexdigest()[:16]
    return f"qa{mail.id}-{digest}"
