"""The processing stage: each stored message, once, from `received` to its outcome.

Read this file to follow a message after ingest: it is parsed, machine-made mail is set aside,
an expert's reply goes to the answer desk, anything else is a participant's question for the
question desk. Each message is handled in one transaction together with every mail it causes
(the outbox); a failure rolls that back and quarantines the message with its reason.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.answer.desk import AnswerDesk
from qa_mailer.answer.tokens import reply_tokens
from qa_mailer.backoff import wait_for_wakeup
from qa_mailer.classify.incoming import Incoming
from qa_mailer.classify.roster import Roster
from qa_mailer.classify.rules import automatic_reason
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import InboundMessage, MessageState
from qa_mailer.db.engine import SessionFactory
from qa_mailer.parse import ParsedMail, parse_mail
from qa_mailer.route.questions import QuestionDesk
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.pipeline")

# Errors that say the database is unreachable or busy, not that this message is bad. Any other
# error, including a constraint or data error, quarantines the message.
_UNAVAILABLE = (OperationalError, InterfaceError)

# Messages released from quarantine by another process are picked up within this time.
SWEEP_SECONDS = 30.0


@dataclass(frozen=True)
class Outcome:
    message_id: int
    state: str
    kind: str | None
    reason: str | None


class Pipeline:
    """Takes `received` messages through parsing, classification and the desks."""

    def __init__(
        self,
        config: Config,
        sessions: SessionFactory,
        roster: Roster,
        templates: Templates,
        clock: Clock,
        on_outbox: Callable[[], None] = lambda: None,
    ):
        self._config = config
        self._sessions = sessions
        self._clock = clock
        self._on_outbox = on_outbox
        self.questions = QuestionDesk(config, roster, templates, clock)
        self.answers = AnswerDesk(config, templates, clock)
        self.wakeup = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop``; wake when ingest stores a message, or every 30 s."""
        while not stop.is_set():
            self.wakeup.clear()
            delay = SWEEP_SECONDS
            try:
                await self.process_pending(stop)
            except _UNAVAILABLE:
                log.exception("database unavailable; processing resumes when it is back")
                delay = 5.0
            await wait_for_wakeup(stop, self.wakeup, delay)

    async def process_pending(self, stop: asyncio.Event | None = None) -> list[Outcome]:
        """Process every `received` message in arrival order."""
        outcomes: list[Outcome] = []
        after = 0
        while stop is None or not stop.is_set():
            async with self._sessions() as session:
                ids = list(
                    await session.scalars(
                        select(InboundMessage.id)
                        .where(
                            InboundMessage.state == MessageState.RECEIVED, InboundMessage.id > after
                        )
                        .order_by(InboundMessage.id)
                        .limit(100)
                    )
                )
            if not ids:
                break
            for message_id in ids:
                outcome = await self.process(message_id)
                if outcome is not None:
                    outcomes.append(outcome)
            after = ids[-1]
        return outcomes

    async def process(self, message_id: int) -> Outcome | None:
        """Process one message; quarantine it if that fails. None if it was not `received`."""
        try:
            async with self._sessions.begin() as session:
                message = await session.get(InboundMessage, message_id)
                if message is None or message.state != MessageState.RECEIVED:
                    return None
                await self._handle(session, message)
                outcome = Outcome(message.id, message.state, message.kind, message.reason)
        except _UNAVAILABLE:
            # Not the message's fault: leave it `received` and let the caller retry later.
            raise
        except Exception as exc:
            return await self.quarantine(
                message_id, f"{type(exc).__name__}: {exc}", traceback.format_exc()
            )
        self._on_outbox()
        return outcome

    async def _handle(self, session: AsyncSession, message: InboundMessage) -> None:
        mail = parse_mail(message.raw)
        incoming = incoming_of(message, mail)
        config = self._config
        automatic = automatic_reason(incoming, config.address)
        if automatic is not None:
            message.state, message.kind, message.reason = (
                MessageState.IGNORED,
                "automatic",
                automatic,
            )
            log.info("%s ignored: %s", mail.message_id, automatic)
        elif tokens := reply_tokens(incoming, config):
            await self.answers.handle(session, message, incoming, tokens)
        elif incoming.sender in config.experts:
            message.state, message.kind = MessageState.HELD, "expert"
            message.reason = "mail from an expert that replies to no question mail"
            log.warning("%s held: %s", mail.message_id, message.reason)
        else:
            accepted = await self.questions.accept(session, message, incoming)
            message.state = MessageState.PROCESSED
            message.kind = "follow-up" if accepted.follow_up else "question"
        # Set last, so the row is written once, with the outcome, when the transaction ends.
        message.sender, message.subject = mail.from_address or None, mail.subject[:2000]
        message.processed_at = self._clock.now()

    async def quarantine(self, message_id: int, reason: str, details: str) -> Outcome:
        """Park a message that could not be processed, with its reason and traceback."""
        async with self._sessions.begin() as session:
            message = await session.get(InboundMessage, message_id)
            assert message is not None
            message.state, message.reason, message.traceback = (
                MessageState.QUARANTINED,
                reason,
                details,
            )
            message.processed_at = self._clock.now()
        log.error("message %d (%s) quarantined: %s", message_id, message.message_id, reason)
        return Outcome(message_id, MessageState.QUARANTINED, message.kind, reason)


def incoming_of(message: InboundMessage, mail: ParsedMail) -> Incoming:
    """The classification view of a stored message."""
    return Incoming(
        mail=mail,
        source=message.source,
        envelope_from=message.envelope_from,
        envelope_to=tuple(r for r in (message.envelope_to or "").split(",") if r),
        received_at=message.received_at,
    )
