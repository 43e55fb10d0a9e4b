"""Delivers the outbox: due mails are claimed, sent, then marked; failures wait and retry.

A mail is claimed before it is sent, so two processes (two `serve`s, or an organiser's command
beside one) never send the same row. A mail claim is a lease the sender renews while it works
through its batch; it sends a mail only while the lease will outlast the send, and nobody
takes a claim before its lease has run out, so even a process wrongly thought dead cannot
race another on the same mail. A crash after sending and before marking sends the same mail
again once the lease runs out, with the same Message-ID, which receiving systems and mail
clients recognise as the same message. Nothing is ever sent that is not in the outbox first.

A batch is sent over a few connections at once (the transport's ``concurrency``), and what
the relay said is written for many mails in one transaction. When the relay is away or
refuses for now (no connection, 421, 451), the rest of the batch is put back untried, to
wait with the mail that failed; the first mail the relay takes after that makes every mail
that waited for it due at once, rather than each at the end of its own backoff. While no
connection to the relay can be opened at all, the sender tries one every few seconds (no
mail is tried for it, so no attempt is spent) and wakes the waiting mail once it opens.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update

from qa_mailer.backoff import Backoff, delay_after, wait_for_wakeup
from qa_mailer.clock import Clock
from qa_mailer.config import OutgoingConfig
from qa_mailer.db import OutboxMail, OutboxState, RecipientOutcome
from qa_mailer.db.claims import ClaimedMail, claim_mail, release_mail
from qa_mailer.db.engine import SessionFactory
from qa_mailer.send.bounces import bounced_for_good, stop_bounced
from qa_mailer.send.outcomes import (
    answer,
    delivery_name,
    describe,
    outcome_entry,
    recipients_with,
    refusals_text,
    storable,
    waiting_recipients,
)
from qa_mailer.send.record import Outcome, record_outcomes
from qa_mailer.send.transport import DeliveryError, Refusals, Transport
from qa_mailer.send.verp import bounce_address, ensure_key
from qa_mailer.workers import Workers

log = logging.getLogger("qa_mailer.send")

BATCH = 200
# How many mails per relay connection may be on their way or sent and not yet written as
# sent. A crash resends at most these (with the same bytes and Message-ID); outcomes are
# written as soon as the last write is done, so under load one write carries several.
UNRECORDED_PER_CONNECTION = 8
# While the relay cannot be reached, a connection is tried after 1 s, then every 2 s (a
# refused connection costs the relay nothing, and the backlog drains soon after its return).
PROBE_MAX_SECONDS = 2.0


class RelayState(StrEnum):
    TAKING = "taking"  # took mail last time it was tried (or has not been tried)
    REFUSING = "refusing"  # answered, but "not now" (421, 451) to a whole batch
    UNREACHABLE = "unreachable"  # no connection could be opened


@dataclass
class _Pass:
    """One batch on its way out: the mails not yet tried, and what came of the others."""

    waiting: deque[ClaimedMail]
    accepted: int = 0
    # The relay refused for now before it took any mail of the batch: the rest wait.
    relay_away: Outcome | None = None
    # The claims could run out before a send ends: the rest wait for their leases.
    ran_short: bool = False
    # The service stops: the mails being sent finish, no other is started.
    halt: asyncio.Event | None = None
    tried: set[int] = field(default_factory=set)

    @property
    def stopped(self) -> bool:
        halted = self.halt is not None and self.halt.is_set()
        return self.ran_short or self.relay_away is not None or halted


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
        # What the relay did to the last batch that met it: a whole batch failing because
        # of the relay makes it "away" until a mail gets through (or a connection opens).
        self.relay = RelayState.TAKING
        # The key that signs each mail's envelope sender (VERP), read once.
        self._verp_key: bytes | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; wake on new mail, on the next retry time, or every minute.

        While the relay cannot be reached, also wake to try a connection, soon at first,
        then less often.
        """
        probes = Backoff(1.0, PROBE_MAX_SECONDS, self._rng)
        try:
            while not stop.is_set():
                self.wakeup.clear()
                try:
                    if self.relay == RelayState.UNREACHABLE:
                        await self.probe_relay()
                    await self.deliver_due(keep_connections=True, stop=stop)
                    delay = await self._seconds_to_next_due()
                    if self.relay == RelayState.UNREACHABLE:
                        delay = min(delay, probes.next_delay())
                    else:
                        probes.reset()
                except Exception:
                    log.exception(
                        "outbox pass failed (is the database reachable?); retrying shortly"
                    )
                    delay = 5.0
                await wait_for_wakeup(stop, self.wakeup, delay)
        finally:
            await self._transport.close()

    async def deliver_due(
        self,
        only: Sequence[int] | None = None,
        *,
        keep_connections: bool = False,
        stop: asyncio.Event | None = None,
    ) -> int:
        """Send every mail that is due now (of ``only``, if given); return how many were sent.

        Once ``stop`` is set, the mails being sent finish and no other is started: the rest of
        the batch goes back to the queue. The relay connections are closed at the end unless
        ``keep_connections``.
        """
        sent = 0
        if self._config.verp and self._verp_key is None:
            async with self._sessions.begin() as tx:
                self._verp_key = await ensure_key(tx, self._clock)
        try:
            while True:
                now = self._clock.now()
                async with self._sessions.begin() as tx:
                    claimed = await claim_mail(tx, self._workers.id, now, self.lease, BATCH, only)
                    bounced = await bounced_for_good(
                        tx,
                        [a for mail in claimed for a in mail.recipients],
                        self._config.bounce_limit,
                    )
                if not claimed:
                    return sent
                self._valid_until = now + self.lease
                renewing = asyncio.create_task(self._renew([mail.id for mail in claimed]))
                try:
                    batch = await self._send(
                        [stop_bounced(mail, bounced) for mail in claimed], stop
                    )
                finally:
                    renewing.cancel()
                sent += batch.accepted
                if stop is not None and stop.is_set():
                    await self._give_back_untried(batch)
                    return sent
                if batch.ran_short:
                    return sent
                woke = await self._after(batch, only)
                if len(claimed) < BATCH and not woke:
                    return sent
        finally:
            if not keep_connections:
                await self._transport.close()

    async def _send(self, mails: list[ClaimedMail], stop: asyncio.Event | None = None) -> _Pass:
        """Send ``mails`` over the transport's connections; write the outcomes as they come.

        Whatever outcomes are waiting when a write ends go into the next write together, and
        no more than a few mails per connection are ever sent and not yet written.
        """
        batch = _Pass(deque(mails), halt=stop)
        connections = max(1, min(self._transport.concurrency, len(mails)))
        room = asyncio.Semaphore(UNRECORDED_PER_CONNECTION * connections)
        results: asyncio.Queue[Outcome | None] = asyncio.Queue()
        senders = [
            asyncio.create_task(self._send_some(batch, results, room)) for _ in range(connections)
        ]
        running = len(senders)
        try:
            while running:
                came = [await results.get()]
                while not results.empty():
                    came.append(results.get_nowait())
                running -= sum(1 for result in came if result is None)
                unwritten = [result for result in came if result is not None]
                if unwritten:
                    await self._record(unwritten)
                    for _ in unwritten:
                        room.release()
            # A sender's own failure (a bug, not a mail's) is raised here.
            await asyncio.gather(*senders)
        finally:
            # Normally all are done; after a failure to write, the sends in flight stop
            # here (their mails are sent again once the claims run out).
            leftovers = [task for task in senders if not task.done()]
            for task in leftovers:
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)
        if batch.relay_away is not None:
            await self._put_back_untried(batch, batch.relay_away)
        return batch

    async def _send_some(
        self,
        batch: _Pass,
        results: asyncio.Queue[Outcome | None],
        room: asyncio.Semaphore,
    ) -> None:
        """Take the batch's mails one by one until none is left or the batch stops.

        Each mail waits for ``room`` first, which the writer gives back once its outcome is
        written.
        """
        try:
            while True:
                await room.acquire()
                if not batch.waiting or batch.stopped:
                    room.release()
                    return
                mail = batch.waiting.popleft()
                if self._clock.now() + self.send_timeout > self._valid_until:
                    # The claim could run out mid-send: leave the rest to whoever takes
                    # them once it has (this process included).
                    log.warning("mail claims ran short; %s waits for its lease", mail.key)
                    batch.ran_short = True
                    room.release()
                    return
                batch.tried.add(mail.id)
                result = await self._deliver(mail)
                if result.accepted_now:
                    batch.accepted += 1
                elif result.relay_failed and not batch.accepted and batch.relay_away is None:
                    batch.relay_away = result
                await results.put(result)
        finally:
            results.put_nowait(None)

    async def _deliver(self, mail: ClaimedMail) -> Outcome:
        """Send ``mail`` to the recipients still waiting for it; what came of it, to record."""
        waiting = waiting_recipients(mail)
        if not waiting:
            # Every recipient already has its final answer (nothing should leave a mail so,
            # but sending to nobody would be an error of its own): record it as it stands.
            return self._final(mail, dict(mail.outcomes), "", accepted_now=False)
        refusals: Refusals | None = None
        error, permanent, relay_failed, unreachable = "", False, False, False
        try:
            async with asyncio.timeout(self.send_timeout.total_seconds()):
                refusals = await self._transport.send(
                    self._envelope(mail), waiting, mail.raw, delivery_name(mail)
                )
        except (DeliveryError, TimeoutError) as exc:
            error = str(exc) or type(exc).__name__
            permanent = isinstance(exc, DeliveryError) and exc.permanent
            # Not this mail but the way out: no relay, or one that says "not now".
            relay_failed = not permanent
            unreachable = isinstance(exc, DeliveryError) and exc.unreachable
        except Exception as exc:
            # Whatever goes wrong with one mail fails that mail, never the whole outbox.
            log.exception("sending %s failed unexpectedly", mail.key)
            error = f"{type(exc).__name__}: {exc}"
        give_up = permanent or mail.attempts >= self._config.max_attempts
        outcomes = dict(mail.outcomes)
        if refusals is None:
            if not give_up:
                result = self._retry(mail, outcomes, error)
                result.relay_failed, result.unreachable = relay_failed, unreachable
                return result
            # Nobody took it this time and nobody will: each waiting recipient is refused
            # with the reason the whole mail failed.
            for address in waiting:
                outcomes[address] = outcome_entry(RecipientOutcome.REFUSED, None, error)
        else:
            for address in waiting:
                outcomes[address] = answer(refusals.get(address), give_up)
        accepted_now = any(
            outcomes[address]["outcome"] == RecipientOutcome.ACCEPTED for address in waiting
        )
        if any(o["outcome"] == RecipientOutcome.DEFERRED for o in outcomes.values()):
            return self._retry(mail, outcomes, describe(mail, outcomes), accepted_now)
        return self._final(mail, outcomes, error, accepted_now)

    def _final(
        self,
        mail: ClaimedMail,
        outcomes: dict[str, dict[str, Any]],
        error: str,
        accepted_now: bool,
    ) -> Outcome:
        """Every recipient has a final answer: the mail is sent (to some, at least) or failed."""
        accepted = recipients_with(mail, outcomes, RecipientOutcome.ACCEPTED)
        refused = recipients_with(mail, outcomes, RecipientOutcome.REFUSED)
        # A mail that reached nobody says why: the error that failed it whole, else the
        # relay's answers; a sent one lists whom it did not reach.
        reason = describe(mail, outcomes) if accepted else (error or describe(mail, outcomes))
        result = Outcome(
            mail,
            state=OutboxState.SENT if accepted else OutboxState.FAILED,
            outcomes=outcomes,
            refused=len(refused),
            last_error=storable(reason) or None,
            sent_at=self._clock.now() if accepted else None,
            accepted_now=accepted_now,
        )
        if not accepted:
            result.report.append(
                (
                    logging.ERROR,
                    f"gave up on {mail.key} after {mail.attempts} attempts: {result.last_error}",
                )
            )
            return result
        if accepted_now:
            result.report.append((logging.INFO, f"sent {mail.key} to {', '.join(accepted)}"))
        if refused:
            result.report.append(
                (
                    logging.WARNING,
                    f"{mail.key} was refused for {refusals_text(refused, outcomes)}",
                )
            )
        return result

    def _retry(
        self,
        mail: ClaimedMail,
        outcomes: dict[str, dict[str, Any]],
        error: str,
        accepted_now: bool = False,
    ) -> Outcome:
        """Put ``mail`` back in the queue, backed off; it goes to those still waiting."""
        delay = delay_after(
            mail.attempts,
            self._config.retry_base_seconds,
            self._config.retry_max_seconds,
            self._rng,
        )
        result = Outcome(
            mail,
            state=OutboxState.QUEUED,
            outcomes=outcomes,
            refused=len(recipients_with(mail, outcomes, RecipientOutcome.REFUSED)),
            last_error=storable(error),
            next_attempt_at=self._clock.now() + timedelta(seconds=delay),
            accepted_now=accepted_now,
        )
        if accepted_now:
            accepted = recipients_with(mail, outcomes, RecipientOutcome.ACCEPTED)
            result.report.append((logging.INFO, f"sent {mail.key} to {', '.join(accepted)}"))
        result.report.append(
            (
                logging.WARNING,
                f"{mail.key} failed (attempt {mail.attempts}), retry in {delay:.0f} s for "
                f"{', '.join(waiting_recipients(mail, outcomes))}: {error}",
            )
        )
        return result

    async def _put_back_untried(self, batch: _Pass, failed: Outcome) -> None:
        """The relay is away: the mails not tried wait with the one that failed, uncounted."""
        untried = [mail for mail in batch.waiting if mail.id not in batch.tried]
        if not untried:
            return
        await self._record(
            [
                Outcome(
                    mail,
                    state=OutboxState.QUEUED,
                    outcomes=mail.outcomes,
                    refused=len(recipients_with(mail, mail.outcomes, RecipientOutcome.REFUSED)),
                    last_error=failed.last_error,
                    next_attempt_at=failed.next_attempt_at,
                    untried=True,
                )
                for mail in untried
            ]
        )
        log.warning(
            "the relay is not taking mail (%s); %d more mail(s) wait until %s",
            failed.last_error,
            len(untried),
            failed.next_attempt_at,
        )

    async def _give_back_untried(self, batch: _Pass) -> None:
        """The service stops: the claimed mails not tried go back to the queue, uncounted,
        for whichever process sends next (this one, restarted, included)."""
        untried = [mail.id for mail in batch.waiting if mail.id not in batch.tried]
        if not untried:
            return
        async with self._sessions.begin() as tx:
            await release_mail(tx, self._workers.id, untried)
        log.info("stopping: %d claimed mail(s) not tried go back to the queue", len(untried))

    async def _record(self, results: list[Outcome]) -> None:
        """Write what came of ``results`` in one transaction, then log it."""
        await record_outcomes(self._sessions, self._workers.id, results)

    async def _after(self, batch: _Pass, only: Sequence[int] | None) -> int:
        """Follow the relay's state; when it takes mail again, wake what waited for it.

        Returns how many waiting mails were made due.
        """
        if batch.accepted == 0:
            if batch.relay_away is not None:
                self.relay = (
                    RelayState.UNREACHABLE if batch.relay_away.unreachable else RelayState.REFUSING
                )
            return 0
        if self.relay == RelayState.TAKING:
            return 0
        self.relay = RelayState.TAKING
        return await self._wake(batch.tried, only)

    async def probe_relay(self) -> int:
        """Try a connection to a relay that could not be reached; if it opens, wake the mail
        that waits for it. Returns how many mails were made due."""
        if not await self._transport.reachable():
            return 0
        log.info("the relay can be reached again")
        self.relay = RelayState.TAKING
        return await self._wake(set(), None)

    async def _wake(self, keep: set[int], only: Sequence[int] | None) -> int:
        """Make every waiting mail due now, but those in ``keep`` (or not in ``only``)."""
        now = self._clock.now()
        woken = update(OutboxMail).where(
            OutboxMail.state == OutboxState.QUEUED,
            OutboxMail.next_attempt_at > now,
        )
        if keep:
            # What failed in this very batch failed with the relay back: it keeps its wait.
            woken = woken.where(OutboxMail.id.not_in(keep))
        if only is not None:
            woken = woken.where(OutboxMail.id.in_(only))
        async with self._sessions.begin() as tx:
            done = await tx.execute(
                woken.values(next_attempt_at=now).execution_options(synchronize_session=False)
            )
        count: int = done.rowcount  # type: ignore[attr-defined]
        if count:
            log.info("the relay takes mail again: %d waiting mail(s) are due now", count)
        return count

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

    def _envelope(self, mail: ClaimedMail) -> str:
        """MAIL FROM: the mail's envelope sender, tagged with its row and signed (VERP)."""
        if self._verp_key is None:
            return mail.envelope_from
        return bounce_address(mail.envelope_from, mail.id, self._verp_key)

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
        due: list[datetime] = [m for m in (next_retry, next_reclaim) if m is not None]
        if not due:
            return 60.0
        return min(60.0, max(0.05, (min(due) - self._clock.now()).total_seconds()))
