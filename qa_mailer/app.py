"""The running service: every stage built from the config, supervised in one TaskGroup.

Mail in (SMTP/LMTP listener, IMAP poller) -> store -> pipeline -> outbox -> sender, with the
digest scheduler beside them. Stages wake each other with events; the database holds all state.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.classify.roster import Roster, load_roster
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db.engine import session_factory
from qa_mailer.db.migrate import require_current
from qa_mailer.digest.schedule import DigestScheduler
from qa_mailer.ingest.imap import ImapPoller
from qa_mailer.ingest.smtp import IntakeHandler, listening_port, start_listener
from qa_mailer.ingest.store import MessageStore
from qa_mailer.pipeline import Pipeline
from qa_mailer.route.batch import BatchDispatcher
from qa_mailer.send.sender import Sender
from qa_mailer.send.transport import Transport, make_transport
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer")


class Service:
    """All stages of one qa-mailer instance. Run one per database."""

    def __init__(
        self,
        config: Config,
        engine: AsyncEngine,
        *,
        clock: Clock,
        transport: Transport | None = None,
        roster: Roster | None = None,
    ):
        # A missing password should stop start-up, not surface as endless reconnects.
        if config.imap is not None:
            config.imap.password()
        if config.outgoing.transport == "smtp" and config.smtp is not None:
            config.smtp.password()
        self.config = config
        self.engine = engine
        self.clock = clock
        self.sessions = session_factory(engine)
        self.roster = roster if roster is not None else load_roster(config.roster, config.countries)
        self.templates = Templates(config.templates)
        transport = transport or make_transport(
            config.outgoing.transport, config.outgoing.maildir, config.smtp
        )
        self.sender = Sender(self.sessions, transport, config.outgoing, clock)
        self.pipeline = Pipeline(
            config,
            self.sessions,
            self.roster,
            self.templates,
            clock,
            on_outbox=self.sender.wakeup.set,
        )
        self.store = MessageStore(self.sessions, clock, on_stored=self.pipeline.wakeup.set)
        self.batches = BatchDispatcher(
            config, self.sessions, self.templates, clock, on_outbox=self.sender.wakeup.set
        )
        self.digests = DigestScheduler(
            config,
            self.sessions,
            self.roster,
            self.templates,
            clock,
            on_outbox=self.sender.wakeup.set,
        )
        self.imap = ImapPoller(config.imap, self.store, self.sessions) if config.imap else None
        self.listener: asyncio.Server | None = None
        self.ready = asyncio.Event()

    @property
    def listener_port(self) -> int | None:
        return listening_port(self.listener) if self.listener else None

    async def run(self, stop: asyncio.Event, grace_seconds: float = 10.0) -> None:
        """Run until ``stop``; then stop intake, let work in flight finish, cancel the rest."""
        await require_current(self.engine)
        # Bound before the task group, so a port in use is a plain error, not a group of them.
        if self.config.listener.enabled:
            handler = IntakeHandler(self.store, self.config.address, self.config.listener.protocol)
            self.listener = await start_listener(self.config.listener, handler)
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self.pipeline.run(stop), name="pipeline"),
                group.create_task(self.sender.run(stop), name="sender"),
                group.create_task(self.digests.run(stop), name="digests"),
            ]
            if any(s.expert_mail == "batch" for s in self.config.sessions):
                tasks.append(group.create_task(self.batches.run(stop), name="batches"))
            if self.imap is not None:
                tasks.append(group.create_task(self.imap.run(stop), name="imap"))
            self.ready.set()
            log.info("qa-mailer running for %s", self.config.address.address)
            await stop.wait()
            log.info("stopping: intake closed, finishing work in flight")
            if self.listener is not None:
                self.listener.close()
            _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
            for task in pending:
                log.warning(
                    "%s did not finish within %.0f s; cancelled", task.get_name(), grace_seconds
                )
                task.cancel()
        if self.listener is not None:
            await self.listener.wait_closed()
