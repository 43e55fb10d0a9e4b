"""The automatic digest: once a session has ended (plus the configured delay), exactly once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from qa_mailer.backoff import every
from qa_mailer.classify.roster import Roster
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import DigestRun
from qa_mailer.db.engine import SessionFactory
from qa_mailer.digest.deliver import produce_digest
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.digest")

CHECK_SECONDS = 60.0


class DigestScheduler:
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
        self._roster = roster
        self._templates = templates
        self._clock = clock
        self._on_outbox = on_outbox

    async def run(self, stop: asyncio.Event) -> None:
        await every(stop, CHECK_SECONDS, self.send_due, log, "the digest check")

    async def send_due(self) -> list[int]:
        """Queue the digest of every session that is due and has none yet; return their numbers."""
        if not self._config.digest.automatic or not self._config.organisers:
            return []
        now = self._clock.now()
        due = [s.number for s in self._config.sessions if s.end + self._config.digest.delay <= now]
        if not due:
            return []
        async with self._sessions() as session:
            done = set(
                await session.scalars(
                    select(DigestRun.session_no).where(DigestRun.automatic_key.is_not(None))
                )
            )
        sent: list[int] = []
        for number in due:
            if number in done:
                continue
            try:
                async with self._sessions.begin() as session:
                    rendered = await produce_digest(
                        session,
                        self._config,
                        self._roster,
                        self._templates,
                        self._clock,
                        number,
                        send=True,
                        automatic=True,
                    )
            except IntegrityError:
                log.info("digest of VC%d was already produced elsewhere", number)
                continue
            log.info("digest of VC%d queued: %s", number, rendered.subject)
            sent.append(number)
        if sent:
            self._on_outbox()
        return sent
