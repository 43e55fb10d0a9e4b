"""The processing stage: each stored message, once, from `received` to its outcome.

Read this file to follow a message after ingest. The stage claims a batch of received messages,
so no other process works on them (db/claims.py). Each message is parsed and sorted
(sorting.py, in parsing helper processes when there are some): machine-made mail is set
aside, an expert's reply goes to the answer desk, anything else is a participant's question
for the question desk. The batch is then written in one transaction, together with every
mail it causes (the outbox). If that transaction fails, the batch is done again one message
per transaction, so a bad message fails alone: it is quarantined with its reason, and its
neighbours go through.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Protocol

from sqlalchemy import exists, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.answer.desk import AnswerDesk
from qa_mailer.backoff import wait_for_wakeup
from qa_mailer.classify.language import warm_up as warm_up_language_detector
from qa_mailer.classify.roster import Roster
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import Answer, InboundMessage, MessageKind, MessageState, Question
from qa_mailer.db.claims import (
    ClaimedMessage,
    claim_message,
    claim_messages,
    owned_messages,
)
from qa_mailer.db.engine import SessionFactory, one_writer_at_a_time
from qa_mailer.offload import CHUNK, Failed, HelpersUnavailable, Offload
from qa_mailer.organise.commands import CommandDesk
from qa_mailer.replies.template import learn as learn_wording
from qa_mailer.route.questions import Asked, QuestionDesk
from qa_mailer.send.bounces import record_bounce
from qa_mailer.sorting import Outcome, Sorted, sort_in_helper, sort_messages, use_config
from qa_mailer.templates import Templates
from qa_mailer.wording import wording_patterns
from qa_mailer.workers import Workers


class Decided(Protocol):
    """What handling a reply or an organiser's command decided about its message."""

    hold_reason: str | None
    ignore_reason: str | None


log = logging.getLogger("qa_mailer.pipeline")

# Errors that say the database is unreachable or busy, not that a message is bad. Any other
# error, including a constraint or data error, fails the message it came from.
_UNAVAILABLE = (OperationalError, InterfaceError)

# Messages released from quarantine by another process are picked up within this time when
# nothing wakes the stage sooner.
SWEEP_SECONDS = 30.0
BATCH = 200
# How many batches are claimed ahead of the one being written: with parsing helpers, that
# many are with the helpers at any time.
AHEAD = 3
# A parsing helper that takes longer than this over a chunk of mail is stopped; the mail that
# stalls it again alone is quarantined.
PARSE_TIMEOUT = 60.0
# Far longer than a batch takes; a dead worker's claims are freed sooner (see workers.py).
LEASE = timedelta(minutes=5)


class Pipeline:
    """Takes received messages through parsing, classification and the desks."""

    def __init__(
        self,
        config: Config,
        sessions: SessionFactory,
        roster: Roster,
        templates: Templates,
        clock: Clock,
        workers: Workers,
        on_outbox: Callable[[], None] = lambda: None,
        batch: int = BATCH,
        parse_processes: int = 0,
    ):
        self._config = config
        self._sessions = sessions
        self._one_writer = one_writer_at_a_time(sessions)
        self._clock = clock
        self._workers = workers
        self._on_outbox = on_outbox
        self._batch = batch
        # The reply parser recognises our own wording as these templates write it, in every
        # language (a translated or overridden to_expert.txt must not break answer splitting).
        learn_wording(wording_patterns(config, templates))
        self.questions = QuestionDesk(config, roster, templates, clock)
        self.answers = AnswerDesk(config, templates, clock)
        self.commands = CommandDesk(config, templates, clock, self.answers)
        self.wakeup = asyncio.Event()
        self._helpers = (
            Offload(
                sort_in_helper,
                parse_processes,
                PARSE_TIMEOUT,
                initializer=use_config,
                initargs=(config,),
            )
            if parse_processes
            else None
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop``; wake when a message is stored, or every 30 s."""
        try:
            await self.start()
            while not stop.is_set():
                self.wakeup.clear()
                delay = SWEEP_SECONDS
                try:
                    await self.process_pending(stop)
                except _UNAVAILABLE:
                    log.exception("database unavailable; processing resumes when it is back")
                    delay = 5.0
                await wait_for_wakeup(stop, self.wakeup, delay)
        finally:
            self.close()

    async def start(self) -> None:
        """Start the parsing helpers, if any (they take a second), before mail is waiting.

        The language detector's model (half a second to load) is loaded now too, in a thread,
        rather than by the first question.
        """
        await asyncio.to_thread(warm_up_language_detector)
        if self._helpers is not None:
            try:
                await self._helpers.start()
            except HelpersUnavailable:
                self._without_helpers()

    def _without_helpers(self) -> None:
        log.exception("parsing helpers do not work; parsing in this process from now on")
        if self._helpers is not None:
            self._helpers.close()
        self._helpers = None

    def helper_pids(self) -> list[int]:
        """The process ids of the parsing helpers (none when parsing happens here)."""
        return self._helpers.pids() if self._helpers is not None else []

    def close(self) -> None:
        """Stop the parsing helpers, if any."""
        if self._helpers is not None:
            self._helpers.close()

    async def process_pending(self, stop: asyncio.Event | None = None) -> list[Outcome]:
        """Claim and process waiting messages, a batch at a time, until none is left.

        While one batch is written, the next is parsed, so the database (in its own process,
        or in SQLite's thread) and the parsing work at the same time instead of taking turns.
        With parsing helpers, up to ``AHEAD`` batches are with the helpers at any time: a
        batch is claimed and handed to them as soon as one is taken back to be written, so
        they never wait for the writing.
        """
        if self._helpers is not None:
            return await self._pipelined(stop)
        outcomes: list[Outcome] = []
        claimed = await self._claim(self._batch * AHEAD)
        while claimed:
            outcomes += await self._process_in_turns(claimed)
            if stop is not None and stop.is_set():
                break
            claimed = await self._claim(self._batch * AHEAD)
        return outcomes

    async def _claim(self, count: int) -> list[ClaimedMessage]:
        async with self._sessions.begin() as tx:
            return await claim_messages(tx, self._workers.id, self._clock.now(), LEASE, count)

    async def _pipelined(self, stop: asyncio.Event | None) -> list[Outcome]:
        """process_pending with parsing helpers: claimed batches queue up for the helpers.

        On SQLite the helpers' queue is topped up after a batch is written and before the
        next write begins: a claim waits for the write lock, so a claim made while a batch is
        being written would wait for that batch, and the helpers could run out of work. On
        PostgreSQL claims and writes go on side by side.

        A message being retried (claimed alone, see claim_messages) may be what killed a
        worker before: it is done once everything else in hand is written, and nothing more
        is claimed until it is, so if it kills this worker too it takes no other message along.
        """
        outcomes: list[Outcome] = []
        sorting: deque[asyncio.Future[list[Sorted]]] = deque()
        writing: asyncio.Task[list[Outcome]] | None = None
        retried: list[ClaimedMessage] = []
        more = True

        async def top_up() -> None:
            nonlocal more
            while more and not retried and len(sorting) < AHEAD:
                if stop is not None and stop.is_set():
                    return
                claimed = await self._claim(self._batch)
                more = bool(claimed)
                if claimed and claimed[0].attempts > 1:
                    retried.extend(claimed)
                elif claimed:
                    sorting.append(asyncio.ensure_future(self._sort_all(claimed)))

        async def write_next() -> None:
            nonlocal writing
            ready = await sorting.popleft()
            if writing is not None:
                outcomes.extend(await writing)
            if self._one_writer:
                await top_up()
            writing = asyncio.create_task(self._write_batch(ready))

        try:
            while True:
                await top_up()
                if retried:
                    while sorting:
                        await write_next()
                    if writing is not None:
                        outcomes.extend(await writing)
                        writing = None
                    outcomes.extend(await self.process_claimed(retried))
                    retried.clear()
                    continue
                if not sorting:
                    break
                await write_next()
            if writing is not None:
                outcomes.extend(await writing)
        finally:
            # Normally all are done. After a failure, the batches claimed and not written are
            # freed when their lease runs out, as a dead worker's would be.
            for future in sorting:
                future.cancel()
            if writing is not None:
                writing.cancel()
        return outcomes

    async def _process_in_turns(self, claimed: Sequence[ClaimedMessage]) -> list[Outcome]:
        """Process the claimed messages here, parsing one batch while the one before is written."""
        batches = [
            claimed[start : start + self._batch] for start in range(0, len(claimed), self._batch)
        ]
        outcomes: list[Outcome] = []
        writing: asyncio.Task[list[Outcome]] | None = None
        try:
            for batch in batches:
                ready = await self._sort_all(batch)
                if writing is not None:
                    outcomes += await writing
                writing = asyncio.create_task(self._write_batch(ready))
            if writing is not None:
                outcomes += await writing
        finally:
            if writing is not None:
                writing.cancel()
        return outcomes

    async def process(self, message_id: int) -> Outcome | None:
        """Claim and process one message; None if it is not waiting to be processed."""
        async with self._sessions.begin() as tx:
            claimed = await claim_message(
                tx, message_id, self._workers.id, self._clock.now(), LEASE
            )
        if claimed is None:
            return None
        [outcome] = await self.process_claimed([claimed])
        return outcome

    async def process_claimed(self, claimed: Sequence[ClaimedMessage]) -> list[Outcome]:
        """Sort the claimed messages, then write what becomes of them."""
        return await self._write_batch(await self._sort_all(claimed))

    async def _sort_all(self, claimed: Sequence[ClaimedMessage]) -> list[Sorted]:
        if self._helpers is None:
            # A chunk at a time, as a helper sorts (see sort_messages), letting a batch being
            # written meanwhile send its next statement between chunks.
            here: list[Sorted] = []
            for start in range(0, len(claimed), CHUNK):
                here += self._sort(claimed[start : start + CHUNK])
                await asyncio.sleep(0)
            return here
        try:
            results = await self._helpers.map(claimed)
        except HelpersUnavailable:
            # Several batches can be at the helpers: the first to hear it stops them.
            if self._helpers is not None:
                self._without_helpers()
            return await self._sort_all(claimed)
        sorted_: list[Sorted] = []
        for message, result in zip(claimed, results, strict=True):
            if isinstance(result, Failed):
                failed = Sorted(message)
                failed.fail(result.reason, "")
                sorted_.append(failed)
            else:
                result.claimed = message
                sorted_.append(result)
        return sorted_

    async def _write_batch(self, batch: list[Sorted]) -> list[Outcome]:
        claimed = [message.claimed for message in batch]
        try:
            async with self._sessions.begin() as tx:
                await self._write(tx, batch)
        except _UNAVAILABLE:
            # Not the messages' fault: their claim runs out and they are processed again.
            raise
        except Exception:
            if len(batch) == 1:
                await self._quarantine(batch[0])
            else:
                log.warning(
                    "a batch of %d messages failed; processing them one at a time", len(batch)
                )
                outcomes: list[Outcome] = []
                for message in claimed:
                    outcomes += await self.process_claimed([message])
                return outcomes
        self._on_outbox()
        return [message.outcome for message in batch]

    def _sort(self, claimed: Sequence[ClaimedMessage]) -> list[Sorted]:
        """Parse and classify messages here: everything that needs no database."""
        return sort_messages(self._config, claimed)

    async def _write(self, tx: AsyncSession, batch: list[Sorted]) -> None:
        """Write the outcome of every message this worker still holds, in one transaction."""
        owned = await owned_messages(tx, [m.claimed.id for m in batch], self._workers.id)
        for message in batch:
            if message.claimed.id not in owned:
                log.warning(
                    "message %d: claim lost to another worker; leaving it to that one",
                    message.claimed.id,
                )
        batch[:] = [m for m in batch if m.claimed.id in owned]
        questions = [m for m in batch if m.kind == MessageKind.QUESTION and m.incoming]
        accepted = await self.questions.accept(
            tx,
            [
                Asked(m.claimed.id, m.incoming, m.text, m.language_clues)
                for m in questions
                if m.incoming
            ],
        )
        for message, taken in zip(questions, accepted, strict=True):
            if taken.follow_up:
                message.kind = MessageKind.FOLLOW_UP
        for message in batch:
            if message.kind == MessageKind.REPLY and message.state == MessageState.PROCESSED:
                await self._reply(tx, message)
            elif message.kind == MessageKind.COMMAND and message.state == MessageState.PROCESSED:
                await self._command(tx, message)
            elif message.bounce is not None:
                await record_bounce(tx, message.claimed.id, message.bounce, self._clock.now())
        for message in batch:
            if message.state in (MessageState.IGNORED, MessageState.HELD):
                log_for = log.info if message.state == MessageState.IGNORED else log.warning
                log_for("%s %s: %s", self._name(message), message.state, message.reason)
        # Most of a batch ends the same way (processed questions): one UPDATE per outcome.
        outcomes: dict[tuple[str, str | None, str | None, str | None], list[int]] = {}
        for m in batch:
            outcomes.setdefault((m.state, m.kind, m.reason, m.details), []).append(m.claimed.id)
        for (state, kind, reason, details), ids in outcomes.items():
            await tx.execute(
                update(InboundMessage)
                .where(InboundMessage.id.in_(ids))
                .values(
                    state=state,
                    kind=kind,
                    reason=reason,
                    traceback=details,
                    processed_at=self._clock.now(),
                    claimed_by=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
        for message in batch:
            if message.state == MessageState.QUARANTINED:
                log.error("%s quarantined: %s", self._name(message), message.reason)

    async def _reply(self, tx: AsyncSession, message: Sorted) -> None:
        assert message.incoming is not None
        incoming = message.incoming
        await self._alone(
            message,
            lambda: self.answers.handle(tx, message.claimed.id, incoming, message.keys),
            tx,
        )

    async def _command(self, tx: AsyncSession, message: Sorted) -> None:
        # An organiser's reply to a notice.
        assert message.incoming is not None
        incoming = message.incoming
        await self._alone(
            message,
            lambda: self.commands.handle(tx, message.claimed.id, incoming, message.notice_tokens),
            tx,
        )

    @staticmethod
    async def _alone(
        message: Sorted, handle: Callable[[], Awaitable[Decided]], tx: AsyncSession
    ) -> None:
        """Run ``handle`` under its own savepoint: replies and commands are few, and one that
        fails is quarantined without undoing the rest of the batch. Its outcome may hold or
        ignore the message."""
        try:
            async with tx.begin_nested():
                outcome = await handle()
        except _UNAVAILABLE:
            raise
        except Exception as exc:
            message.fail(f"{type(exc).__name__}: {exc}", traceback.format_exc())
            return
        if outcome.ignore_reason is not None:
            message.state, message.reason = MessageState.IGNORED, outcome.ignore_reason
        elif outcome.hold_reason is not None:
            message.state, message.reason = MessageState.HELD, outcome.hold_reason

    async def _quarantine(self, message: Sorted) -> None:
        """Park a message whose transaction failed, with its reason and traceback.

        Only a message this worker still holds is parked; one whose own question or answer
        is already stored was done by an earlier attempt and is marked so instead.
        """
        details = traceback.format_exc()
        last_line = details.strip().rsplit("\n", 1)[-1]
        async with self._sessions.begin() as tx:
            message_id = message.claimed.id
            done = await tx.scalar(
                select(
                    exists().where(Question.message_id == message_id)
                    | exists().where(Answer.message_id == message_id)
                )
            )
            values = (
                {"state": MessageState.PROCESSED, "reason": "already processed"}
                if done
                else {
                    "state": MessageState.QUARANTINED,
                    "reason": last_line[:2000],
                    "traceback": details,
                }
            )
            await tx.execute(
                update(InboundMessage)
                .where(
                    InboundMessage.id == message_id,
                    InboundMessage.claimed_by == self._workers.id,
                    InboundMessage.state == MessageState.PROCESSING,
                )
                .values(**values, processed_at=self._clock.now(), claimed_by=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
        message.state, message.reason = values["state"], values["reason"]
        if done:
            log.info("%s was already processed", self._name(message))
        else:
            log.error("%s quarantined: %s", self._name(message), message.reason)

    @staticmethod
    def _name(message: Sorted) -> str:
        return f"message {message.claimed.id} ({message.claimed.rfc_message_id})"
