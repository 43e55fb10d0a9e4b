"""Retention: the service removes raw mail and sent mail bodies after `privacy.keep_mail_days`.

What became of a mail stays (its state, sender, subject, reason, the question and answer
it made, the outbox row with its recipients and outcomes); only the bytes of the mail go.
Mail still waiting for an organiser (held, quarantined) or still to be sent keeps them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import func, select, update

from qa_mailer.backoff import every
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import InboundMessage, MessageState, OutboxMail, OutboxState, RawMessage
from qa_mailer.db.engine import SessionFactory

log = logging.getLogger("qa_mailer.retention")

# How often the service looks for mail past its time.
CHECK_SECONDS = 600.0
DONE_MESSAGES = (MessageState.PROCESSED, MessageState.IGNORED)
DONE_MAILS = (OutboxState.SENT, OutboxState.FAILED)


async def expire_mail(sessions: SessionFactory, config: Config, now: datetime) -> tuple[int, int]:
    """Remove the raw bytes of mail past ``privacy.keep_mail``: (received, sent) emptied.

    One UPDATE per table, so several processes doing it at once do no harm.
    """
    keep = config.privacy.keep_mail
    if keep is None:
        return 0, 0
    cutoff = now - keep
    async with sessions.begin() as tx:
        received = await tx.execute(
            update(RawMessage)
            .where(
                RawMessage.message_id.in_(
                    select(InboundMessage.id).where(
                        InboundMessage.state.in_(DONE_MESSAGES),
                        InboundMessage.received_at < cutoff,
                    )
                ),
                func.length(RawMessage.raw) > 0,
            )
            .values(raw=b"")
            .execution_options(synchronize_session=False)
        )
        sent = await tx.execute(
            update(OutboxMail)
            .where(
                OutboxMail.state.in_(DONE_MAILS),
                OutboxMail.created_at < cutoff,
                func.length(OutboxMail.raw) > 0,
            )
            .values(raw=b"")
            .execution_options(synchronize_session=False)
        )
    counts = (int(received.rowcount), int(sent.rowcount))  # type: ignore[attr-defined]
    if any(counts):
        log.info(
            "retention: raw copies of %d received and %d sent mail(s) older than %s removed",
            *counts,
            keep,
        )
    return counts


class RetentionSweeper:
    """Runs expire_mail every CHECK_SECONDS while the service runs (schedule role)."""

    def __init__(self, config: Config, sessions: SessionFactory, clock: Clock):
        self._config = config
        self._sessions = sessions
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        if self._config.privacy.keep_mail is None:
            return
        await every(stop, CHECK_SECONDS, self.sweep, log, "the retention sweep")

    async def sweep(self) -> tuple[int, int]:
        return await expire_mail(self._sessions, self._config, self._clock.now())
