"""The automatic digests: a session's digest when there is news, at most once a day.

The policy, for each session, checked every minute:
- never before the session's end plus ``digest.delay_minutes``, and never while mail that has
  arrived waits to be processed (it may be the news);
- at most once per day of the organisers' time zone, at or after ``digest.hour`` there;
- only with news: a question asked, answered or with a reply held after the digest before and
  before today's hour (news after the hour waits for tomorrow's digest), so never an empty one;
- a closing digest when all of the session's questions are answered or ``digest.closing_days``
  have passed since its end; after it, only a new question brings another digest.
Each digest is recorded under the key "VC<n>:<day>" in a unique column, in the transaction
that queues it: another process or a restart cannot send that day's digest again.

The programme report (digest/programme.py) goes by the same rules, every
``digest.programme_days`` days, under the key "programme:<day>".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.backoff import wait_or_stop
from qa_mailer.classify.roster import Roster
from qa_mailer.clock import Clock
from qa_mailer.config import Config, SessionConfig
from qa_mailer.db import Answer, DigestRun, InboundMessage, MessageState, Question
from qa_mailer.db.engine import SessionFactory
from qa_mailer.digest.build import Digest, build_digest
from qa_mailer.digest.deliver import record_digest
from qa_mailer.digest.programme import PROGRAMME, produce_programme
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.digest")

CHECK_SECONDS = 60.0
# While mail waits to be processed, the digests look again this soon.
WAITING_SECONDS = 2.0
WAITING = (MessageState.RECEIVED, MessageState.PROCESSING)


@dataclass(frozen=True)
class LastDigest:
    """The automatic digest a session had last, if any."""

    at: datetime | None = None
    closing: bool = False


def todays_hour(config: Config, now: datetime) -> datetime:
    """Today's digest hour in the organisers' time zone, as an aware datetime."""
    zone = config.digest.timezone
    day = now.astimezone(zone).date()
    return datetime.combine(day, time(config.digest.hour), tzinfo=zone)


def digest_key(session: SessionConfig, mark: datetime) -> str:
    return f"{session.code}:{mark.date().isoformat()}"


def decide(
    config: Config, session: SessionConfig, digest: Digest, last: LastDigest, mark: datetime
) -> Digest | None:
    """The digest to send today, marked closing or not; None when none is due."""
    if not digest.questions:
        return None
    if last.closing and not any(
        last.at is not None and last.at < q.asked < mark for q in digest.questions
    ):
        # Closed: only a question asked after the closing digest opens the session again.
        return None
    news = digest.news_between(last.at, mark)
    closing = digest.pending == 0 or mark >= session.end + config.digest.closing_after
    if news == 0 and not (closing and not last.closing):
        return None
    return replace(digest, closing=closing)


async def any_news(db: AsyncSession, since: datetime | None, until: datetime) -> bool:
    """Whether any question was asked or answered, or any reply held, in (since, until]."""
    moments = [
        (Question.asked_at, select(Question.id)),
        (Answer.created_at, select(Answer.id)),
    ]
    for column, query in moments:
        query = query.where(column <= until)
        if since is not None:
            query = query.where(column > since)
        if await db.scalar(query.limit(1)) is not None:
            return True
    return False


class DigestScheduler:
    def __init__(
        self,
        config: Config,
        sessions: SessionFactory,
        roster: Roster,
        templates: Templates,
        clock: Clock,
        on_outbox: Callable[[], None] = lambda: None,
        intake_ready: Sequence[asyncio.Event] = (),
    ):
        self._config = config
        self._sessions = sessions
        self._roster = roster
        self._templates = templates
        self._clock = clock
        self._on_outbox = on_outbox
        # Set when this process's intake has fetched the mail that waited at start-up.
        self._intake_ready = intake_ready
        # The last check found mail waiting to be processed.
        self.postponed = False

    async def run(self, stop: asyncio.Event) -> None:
        for ready in self._intake_ready:
            stopped = asyncio.ensure_future(stop.wait())
            fetched = asyncio.ensure_future(ready.wait())
            await asyncio.wait({stopped, fetched}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            fetched.cancel()
        while not stop.is_set():
            self.postponed = False
            try:
                await self.send_due()
                await self.send_programme_due()
            except Exception:
                log.exception("the digest check failed; trying again in %.0f s", CHECK_SECONDS)
            await wait_or_stop(stop, WAITING_SECONDS if self.postponed else CHECK_SECONDS)

    async def send_due(self) -> list[int]:
        """Queue the digest of every session that is due today; return their numbers."""
        config = self._config
        now = self._clock.now()
        candidates = [s for s in config.sessions if s.end + config.digest.delay <= now]
        found = await self._ready(now) if candidates else None
        if found is None:
            return []
        mark, runs = found
        done = {r.automatic_key for r in runs}
        last = {r.session_no: LastDigest(r.created_at, r.closing) for r in runs}
        sent: list[int] = []
        for session in candidates:
            key = digest_key(session, mark)
            if key in done:
                continue
            if await self._send(session, key, last.get(session.number, LastDigest()), mark):
                sent.append(session.number)
        if sent:
            self._on_outbox()
        return sent

    async def send_programme_due(self) -> bool:
        """Queue the programme report if it is due today; True if it was queued."""
        if self._config.digest.programme_days == 0:
            return False
        found = await self._ready(self._clock.now())
        if found is None:
            return False
        mark, runs = found
        done = {r.automatic_key for r in runs}
        last = [LastDigest(r.created_at) for r in runs if r.session_no == PROGRAMME]
        if await self._send_programme(last[-1] if last else LastDigest(), mark, done):
            self._on_outbox()
            return True
        return False

    async def _ready(self, now: datetime) -> tuple[datetime, list[DigestRun]] | None:
        """Today's digest hour and the automatic digests so far, if digests may go now.

        None when automatic digests are off, there is nobody to send them to, the hour has
        not come, or mail waits to be processed (then ``postponed`` is set).
        """
        config = self._config
        if not config.digest.automatic or not config.organisers:
            return None
        mark = todays_hour(config, now)
        if now < mark:
            return None
        async with self._sessions() as db:
            waiting = await db.scalar(
                select(func.count())
                .select_from(InboundMessage)
                .where(InboundMessage.state.in_(WAITING), InboundMessage.received_at <= now)
            )
            if waiting:
                log.info("digests wait: %d message(s) not yet processed", waiting)
                self.postponed = True
                return None
            runs = list(
                await db.scalars(
                    select(DigestRun)
                    .where(DigestRun.automatic_key.is_not(None))
                    .order_by(DigestRun.id)
                )
            )
        return mark, runs

    async def _send_programme(
        self, last: LastDigest, mark: datetime, done: set[str | None]
    ) -> bool:
        """The programme report, every ``programme_days`` at the digest hour, if there is news."""
        days = self._config.digest.programme_days
        key = f"programme:{mark.date().isoformat()}"
        if days == 0 or key in done:
            return False
        zone = self._config.digest.timezone
        if last.at is not None and (mark.date() - last.at.astimezone(zone).date()).days < days:
            return False
        try:
            async with self._sessions.begin() as db:
                news = await any_news(db, last.at, mark)
                if not news:
                    return False
                rendered, _ = await produce_programme(
                    db,
                    self._config,
                    self._roster,
                    self._templates,
                    self._clock,
                    send=True,
                    automatic_key=key,
                )
        except IntegrityError:
            log.info("report %s was already produced elsewhere", key)
            return False
        log.info("report %s queued: %s", key, rendered.subject)
        return True

    async def _send(
        self, session: SessionConfig, key: str, last: LastDigest, mark: datetime
    ) -> bool:
        try:
            async with self._sessions.begin() as db:
                digest = await build_digest(
                    db, self._config, self._roster, session.number, self._clock.now(), last.at
                )
                due = decide(self._config, session, digest, last, mark)
                if due is None:
                    return False
                rendered = await record_digest(
                    db,
                    self._config,
                    self._templates,
                    self._clock,
                    due,
                    send=True,
                    automatic_key=key,
                )
        except IntegrityError:
            log.info("digest %s was already produced elsewhere", key)
            return False
        log.info("digest %s queued: %s", key, rendered.subject)
        return True
