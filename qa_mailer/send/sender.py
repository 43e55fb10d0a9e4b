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
from typing import Any

from sqlalchemy import func, select, update

from qa_mailer.backoff import delay_after, wait_for_wakeup
from qa_mailer.clock import Clock
from qa_mailer.config import OutgoingConfig
from qa_mailer.db import (
    OutboxMail,
    OutboxState,
    Question,
    QuestionState,
    RecipientOutcome,
    dispatch_questions,
)
from qa_mailer.db.claims import ClaimedMail, claim_mail
from qa_mailer.db.engine import SessionFactory
from qa_mailer.send.bounces import bounced_for_good, stop_bounced
from qa_mailer.send.transport import DeliveryError, Refusal, Refusals, Transport
from qa_mailer.send.verp import bounce_address, ensure_key
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
        # The key that signs each mail's envelope sender (VERP), read once.
        self._verp_key: bytes | None = None

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
        if self._config.verp and self._verp_key is None:
            async with self._sessions.begin() as tx:
                self._verp_key = await ensure_key(tx, self._clock)
        while True:
            now = self._clock.now()
            async with self._sessions.begin() as tx:
                claimed = await claim_mail(tx, self._workers.id, now, self.lease, BATCH, only)
                bounced = await bounced_for_good(
                    tx, [a for mail in claimed for a in mail.recipients], self._config.bounce_limit
                )
            self._valid_until = now + self.lease
            renewing = asyncio.create_task(self._renew([mail.id for mail in claimed]))
            try:
                for mail in claimed:
                    if self._clock.now() + self.send_timeout > self._valid_until:
                        # The claim could run out mid-send: leave the rest to whoever takes
                        # them once it has (this process included).
                        log.warning("mail claims ran short; %s waits for its lease", mail.key)
                        return sent
                    sent += await self._deliver(stop_bounced(mail, bounced))
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
        """Send ``mail`` to the recipients still waiting for it; 1 if anyone took it now."""
        waiting = waiting_recipients(mail)
        if not waiting:
            # Every recipient already has its final answer (nothing should leave a mail so,
            # but sending to nobody would be an error of its own): record it as it stands.
            await self._record(mail, dict(mail.outcomes), "", accepted_now=False)
            return 0
        refusals: Refusals | None = None
        error, permanent = "", False
        try:
            refusals = await asyncio.wait_for(
                self._transport.send(self._envelope(mail), waiting, mail.raw, delivery_name(mail)),
                self.send_timeout.total_seconds(),
            )
        except (DeliveryError, TimeoutError) as exc:
            error = str(exc) or type(exc).__name__
            permanent = isinstance(exc, DeliveryError) and exc.permanent
        except Exception as exc:
            # Whatever goes wrong with one mail fails that mail, never the whole outbox.
            log.exception("sending %s failed unexpectedly", mail.key)
            error = f"{type(exc).__name__}: {exc}"
        give_up = permanent or mail.attempts >= self._config.max_attempts
        outcomes = dict(mail.outcomes)
        if refusals is None:
            if not give_up:
                await self._retry(mail, outcomes, error)
                return 0
            # Nobody took it this time and nobody will: each waiting recipient is refused
            # with the reason the whole mail failed.
            for address in waiting:
                outcomes[address] = _outcome(RecipientOutcome.REFUSED, None, error)
        else:
            for address in waiting:
                outcomes[address] = _answer(refusals.get(address), give_up)
        accepted_now = any(
            outcomes[address]["outcome"] == RecipientOutcome.ACCEPTED for address in waiting
        )
        if any(o["outcome"] == RecipientOutcome.DEFERRED for o in outcomes.values()):
            await self._retry(mail, outcomes, describe(mail, outcomes), accepted_now)
        else:
            await self._record(mail, outcomes, error, accepted_now)
        return 1 if accepted_now else 0

    def _envelope(self, mail: ClaimedMail) -> str:
        """MAIL FROM: the mail's envelope sender, tagged with its row and signed (VERP)."""
        if self._verp_key is None:
            return mail.envelope_from
        return bounce_address(mail.envelope_from, mail.id, self._verp_key)

    def _ours(self, mail: ClaimedMail) -> list[object]:
        return [
            OutboxMail.id == mail.id,
            OutboxMail.claimed_by == self._workers.id,
            OutboxMail.state == OutboxState.SENDING,
        ]

    async def _mark(self, mail: ClaimedMail, values: dict[str, object], accepted_now: bool) -> bool:
        """Write ``values`` to ``mail`` if its claim is still ours; False if it ran out."""
        async with self._sessions.begin() as tx:
            marked = await tx.execute(
                update(OutboxMail)
                .where(*self._ours(mail))  # type: ignore[arg-type]
                .values(**values, claimed_by=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
            if marked.rowcount == 0:  # type: ignore[attr-defined]
                log.warning(
                    "%s: its claim ran out before the outcome was recorded; another worker "
                    "may send it again",
                    mail.key,
                )
                return False
            if accepted_now and mail.dispatch_id is not None:
                # An expert now has the question: it is no longer "new".
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
        return True

    async def _record(
        self,
        mail: ClaimedMail,
        outcomes: dict[str, dict[str, Any]],
        error: str,
        accepted_now: bool,
    ) -> None:
        """Every recipient has a final answer: the mail is sent (to some, at least) or failed."""
        accepted = _having(mail, outcomes, RecipientOutcome.ACCEPTED)
        refused = _having(mail, outcomes, RecipientOutcome.REFUSED)
        # A mail that reached nobody says why: the error that failed it whole, else the
        # relay's answers; a sent one lists whom it did not reach.
        reason = describe(mail, outcomes) if accepted else (error or describe(mail, outcomes))
        values: dict[str, object] = {
            "state": OutboxState.SENT if accepted else OutboxState.FAILED,
            "outcomes": outcomes,
            "refused": len(refused),
            "last_error": _storable(reason) or None,
        }
        if accepted:
            values["sent_at"] = self._clock.now()
        if not await self._mark(mail, values, accepted_now):
            return
        if not accepted:
            log.error(
                "gave up on %s after %d attempts: %s", mail.key, mail.attempts, values["last_error"]
            )
            return
        if accepted_now:
            log.info("sent %s to %s", mail.key, ", ".join(accepted))
        if refused:
            log.warning("%s was refused for %s", mail.key, _refusals_text(refused, outcomes))

    async def _retry(
        self,
        mail: ClaimedMail,
        outcomes: dict[str, dict[str, Any]],
        error: str,
        accepted_now: bool = False,
    ) -> None:
        """Put ``mail`` back in the queue, backed off; it goes to those still waiting."""
        delay = delay_after(
            mail.attempts,
            self._config.retry_base_seconds,
            self._config.retry_max_seconds,
            self._rng,
        )
        values: dict[str, object] = {
            "state": OutboxState.QUEUED,
            "outcomes": outcomes,
            "refused": len(_having(mail, outcomes, RecipientOutcome.REFUSED)),
            "last_error": _storable(error),
            "next_attempt_at": self._clock.now() + timedelta(seconds=delay),
        }
        if not await self._mark(mail, values, accepted_now):
            return
        if accepted_now:
            accepted = _having(mail, outcomes, RecipientOutcome.ACCEPTED)
            log.info("sent %s to %s", mail.key, ", ".join(accepted))
        log.warning(
            "%s failed (attempt %d), retry in %.0f s for %s: %s",
            mail.key,
            mail.attempts,
            delay,
            ", ".join(waiting_recipients(mail, outcomes)),
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


def waiting_recipients(
    mail: ClaimedMail, outcomes: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """The recipients ``mail`` still has to reach: no answer yet, or deferred (4xx)."""
    known = mail.outcomes if outcomes is None else outcomes
    return [
        address
        for address in mail.recipients
        if known.get(address, {}).get("outcome") in (None, RecipientOutcome.DEFERRED)
    ]


def describe(mail: ClaimedMail, outcomes: dict[str, dict[str, Any]]) -> str:
    """The refusals and deferrals of ``mail`` in one line, for last_error and the logs."""
    parts = []
    for outcome, label in (
        (RecipientOutcome.REFUSED, "refused for"),
        (RecipientOutcome.DEFERRED, "deferred for"),
    ):
        having = _having(mail, outcomes, outcome)
        if having:
            parts.append(f"{label} {_refusals_text(having, outcomes)}")
    return "; ".join(parts)


def _refusals_text(addresses: list[str], outcomes: dict[str, dict[str, Any]]) -> str:
    return "; ".join(
        f"{address}: {outcomes[address].get('code') or ''} {outcomes[address].get('text', '')}".replace(
            ":  ", ": "
        ).strip()
        for address in addresses
    )


def _having(
    mail: ClaimedMail, outcomes: dict[str, dict[str, Any]], outcome: RecipientOutcome
) -> list[str]:
    return [a for a in mail.recipients if outcomes.get(a, {}).get("outcome") == outcome]


def _answer(refusal: Refusal | None, give_up: bool) -> dict[str, Any]:
    """The outcome of one recipient from the relay's answer to it."""
    if refusal is None:
        return _outcome(RecipientOutcome.ACCEPTED, None, "")
    final = refusal.permanent or give_up
    kind = RecipientOutcome.REFUSED if final else RecipientOutcome.DEFERRED
    return _outcome(kind, refusal.code, refusal.text)


def _outcome(kind: RecipientOutcome, code: int | None, text: str) -> dict[str, Any]:
    if kind == RecipientOutcome.ACCEPTED:
        return {"outcome": kind.value}
    return {"outcome": kind.value, "code": code, "text": _storable(text)[:500]}


def _storable(text: str) -> str:
    # A relay's answer or an exception may hold anything; PostgreSQL text takes no NUL and
    # no lone surrogate, and a row that cannot be written would stop the outbox.
    cleaned = text.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")
    return cleaned[:2000]
