"""The running service: every stage built from the config, supervised in one TaskGroup.

Mail in (SMTP/LMTP listener, IMAP poller) -> store -> pipeline -> outbox -> sender, with the
digest scheduler and batch dispatcher beside them. Stages wake each other with events; the
database holds all state. Several `serve` processes may share one database, each doing all of
the work or chosen roles: every unit of work is claimed before it is done (see workers.py and
db/claims.py), and other processes' commits wake this one's stages (db/wakeups.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Collection, Iterator

from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.classify.roster import Roster, load_roster
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import Role
from qa_mailer.db.engine import session_factory
from qa_mailer.db.revision import require_current
from qa_mailer.db.wakeups import listen
from qa_mailer.diagnose import SetupError, diagnose, smtp_endpoint
from qa_mailer.digest.alerts import alert_for, queue_alert
from qa_mailer.digest.notices import OrganiserNotices
from qa_mailer.digest.schedule import DigestScheduler
from qa_mailer.ingest.authentication import MailAuthenticator
from qa_mailer.ingest.imap import FetchLimits, ImapPoller
from qa_mailer.ingest.smtp import IntakeHandler, listening_port, start_listener
from qa_mailer.ingest.store import MessageStore
from qa_mailer.oauth2 import GrantRefused, TokenSource, read_grant
from qa_mailer.organise.retention import RetentionSweeper
from qa_mailer.organise.roster_watch import RosterWatcher
from qa_mailer.pipeline import Pipeline
from qa_mailer.route.batch import BatchDispatcher
from qa_mailer.send.sender import Sender
from qa_mailer.send.transport import SmtpTransport, Transport, make_transport
from qa_mailer.template_check import check_templates
from qa_mailer.templates import Templates
from qa_mailer.workers import Timing, Workers

log = logging.getLogger("qa_mailer")

ALL_ROLES: tuple[Role, ...] = tuple(Role)

# Allocations between two collections of Python's youngest generation while the service runs
# (Python's default is 700); see collector_tuned.
YOUNG_COLLECTION = 20_000

# How long the stages may finish the work in hand once a stop is asked for; then it is cancelled
# (and claimed again by whichever process runs next).
GRACE_SECONDS = 10.0


@contextlib.contextmanager
def collector_tuned() -> Iterator[None]:
    """Python's cyclic garbage collector set for a long-running service, until the end.

    What start-up loaded (modules, the ORM's mappers, templates, the configuration) lives as
    long as the process: ``gc.freeze`` takes it out of the collector's view, and the young
    generation is collected every 20,000 allocations rather than every 700. Measured while
    processing 2,000-3,000 questions (gc.callbacks): the collector took 0.16-0.25 ms per
    question in the service's process, two thirds of it in two full collections over the
    125,000 objects of start-up, and 0.02-0.07 ms so tuned. The rate did not move by more
    than the machine's drift. Unfrozen and reset at the end: a test runs many services in
    one process, and what they leave behind must stay collectable.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


class Service:
    """The stages of one qa-mailer process; run as many as you like on one database."""

    def __init__(
        self,
        config: Config,
        engine: AsyncEngine,
        *,
        clock: Clock,
        transport: Transport | None = None,
        roster: Roster | None = None,
        roles: Collection[Role] = ALL_ROLES,
        timing: Timing | None = None,
    ):
        # A missing password or OAuth2 grant should stop start-up, not surface as endless
        # reconnects.
        imap = config.imap if Role.INTAKE in roles else None
        relay = config.smtp if config.outgoing.transport == "smtp" and Role.SEND in roles else None
        grants = {c.oauth2 for c in (imap, relay) if c is not None and c.oauth2 is not None}
        for grant in grants:
            try:
                read_grant(grant.token_file)
            except GrantRefused as exc:
                raise SetupError(str(exc)) from None
        if imap is not None and imap.oauth2 is None:
            imap.password()
        if relay is not None:
            relay.password()
        # The mailbox and the relay share one grant's access tokens when they use the same.
        tokens = {grant: TokenSource(grant) for grant in grants}
        self.config = config
        self.engine = engine
        self.clock = clock
        self.roles = frozenset(roles)
        self.sessions = session_factory(engine)
        self.workers = Workers(self.sessions, clock, timing or Timing.of(config.workers))
        self.roster = roster if roster is not None else load_roster(config.roster, config.countries)
        self.templates = Templates.of(config)
        transport = transport or make_transport(
            config.outgoing.transport,
            config.outgoing.maildir,
            config.smtp,
            tokens.get(config.smtp.oauth2) if config.smtp and config.smtp.oauth2 else None,
        )
        self.transport = transport
        self.sender = Sender(self.sessions, transport, config.outgoing, clock, self.workers)
        self.pipeline = Pipeline(
            config,
            self.sessions,
            self.roster,
            self.templates,
            clock,
            self.workers,
            on_outbox=self.sender.wakeup.set,
            parse_processes=config.workers.parse_processes if Role.PROCESS in roles else 0,
        )
        self.store = MessageStore(self.sessions, clock, on_stored=self.pipeline.wakeup.set)
        self.batches = BatchDispatcher(
            config, self.sessions, self.templates, clock, on_outbox=self.sender.wakeup.set
        )
        self.imap = (
            ImapPoller(
                config.imap,
                self.store,
                self.sessions,
                self.workers,
                # The listener's size limit holds for mail fetched by IMAP too.
                FetchLimits(config.listener.max_message_bytes, config.imap.fetch_batch_bytes),
                tokens.get(config.imap.oauth2) if config.imap.oauth2 else None,
            )
            if config.imap and Role.INTAKE in roles
            else None
        )
        self.digests = DigestScheduler(
            config,
            self.sessions,
            self.roster,
            self.templates,
            clock,
            on_outbox=self.sender.wakeup.set,
            intake_ready=[self.imap.caught_up] if self.imap is not None else [],
        )
        self.notices = OrganiserNotices(
            config, self.sessions, self.templates, clock, on_outbox=self.sender.wakeup.set
        )
        self.roster_watcher = RosterWatcher(config, engine, self.roster)
        self.retention = RetentionSweeper(config, self.sessions, clock)
        self.listener: asyncio.Server | None = None
        self.ready = asyncio.Event()

    @property
    def listener_port(self) -> int | None:
        return listening_port(self.listener) if self.listener else None

    def _changed(self, what: str) -> None:
        """Another process committed something: wake the stages it concerns."""
        if what in ("messages", "*"):
            self.pipeline.wakeup.set()
        if what in ("outbox", "*"):
            self.sender.wakeup.set()

    async def run(self, stop: asyncio.Event, grace_seconds: float = GRACE_SECONDS) -> None:
        """Run until ``stop``; then stop intake, let work in flight finish, cancel the rest."""
        await require_current(self.engine)
        # A template that cannot render stops start-up, naming its file and line.
        check_templates(self.config, self.templates, self.clock)
        roles = self.roles
        if Role.SEND in roles and isinstance(self.transport, SmtpTransport):
            await self._try_relay(self.transport)
        # Bound before the task group, so a port in use is a plain error, not a group of them.
        if self.config.listener.enabled and Role.INTAKE in roles:
            # Over LMTP the MTA in front took the mail in and is the one to verify it; its
            # Authentication-Results count as a provider's (the topmost trusted one).
            authenticator = (
                MailAuthenticator(
                    self.config.authentication, self.config.expert_check.trusted_authserv_ids
                )
                if self.config.listener.protocol == "smtp"
                else None
            )
            handler = IntakeHandler(
                self.store, self.config.address, self.config.listener.protocol, authenticator
            )
            self.listener = await start_listener(self.config.listener, handler)
        await self.workers.register(sorted(roles))
        # The stages stop on ``halt``: set by ``stop``, or by a stage that found a mistake in
        # the settings (after queuing the organisers' alert, which is sent before the end).
        halt = asyncio.Event()
        self._mistake: SetupError | None = None
        self._alert: int | None = None
        try:
            with collector_tuned():
                async with _setup_errors_unwrapped(), asyncio.TaskGroup() as group:
                    self._start(group, halt)
                    self.ready.set()
                    log.info(
                        "qa-mailer running for %s as worker %d (%s)",
                        self.config.address.address,
                        self.workers.id,
                        ", ".join(sorted(roles)),
                    )
                    await _first(stop, halt)
                    halt.set()
                    log.info("stopping: intake closed, finishing work in flight")
                    if self.listener is not None:
                        self.listener.close()
                    await self._finish(grace_seconds)
            if self._alert is not None:
                await self._send_alert(self._alert, grace_seconds)
        finally:
            if self.listener is not None:
                self.listener.close()
            await self.workers.stop()
        if self.listener is not None:
            await self.listener.wait_closed()
        if self._mistake is not None:
            raise self._mistake

    async def _poll(self, poller: ImapPoller, halt: asyncio.Event) -> None:
        """Run the poller; on a mistake in its settings, tell the organisers and stop all."""
        try:
            await poller.run(halt)
        except SetupError as exc:
            self._mistake = exc
            alert = alert_for("imap", str(exc), exc)
            try:
                self._alert = await queue_alert(
                    self.sessions, self.config, self.templates, self.clock, alert
                )
            except Exception:
                log.exception("the organisers' alert could not be queued")
            halt.set()

    async def _send_alert(self, number: int, grace_seconds: float) -> None:
        """Deliver the alert now if this process sends mail; else the sender that does will."""
        if Role.SEND not in self.roles:
            return
        self.sender.wakeup.set()
        try:
            await asyncio.wait_for(self.sender.deliver_due(only=[number]), grace_seconds)
        except Exception:
            log.exception("the organisers' alert waits in the outbox")

    async def _try_relay(self, transport: SmtpTransport) -> None:
        """Log in to the relay once at start: a definite mistake stops the service here."""
        relay = transport.config
        where = f"{relay.host}:{relay.port}"
        try:
            await transport.probe()
        except Exception as exc:
            diagnosis = await diagnose(exc, smtp_endpoint(relay))
            if diagnosis.definite:
                # No mail can leave, so the organisers cannot be told by mail: the log and
                # the exit status are all there is.
                log.error(
                    "SMTP relay %s refuses: no mail can leave, nor tell the organisers", where
                )
                raise SetupError(f"SMTP relay {where}: {diagnosis.text}") from exc
            log.warning("SMTP relay %s: %s; mail waits in the outbox", where, diagnosis.text)
            return
        log.info("SMTP relay %s: connected%s", where, ", login accepted" if relay.username else "")

    def _start(self, group: asyncio.TaskGroup, stop: asyncio.Event) -> None:
        roles = self.roles
        # The heartbeat and the wakeups outlive the grace period of the stages: the workers'
        # own stop event ends them last.
        self._quit = asyncio.Event()
        self._support = [
            group.create_task(self.workers.run(self._quit), name="heartbeat"),
            group.create_task(listen(self.engine, self._changed, self._quit), name="wakeups"),
        ]
        self._tasks: list[asyncio.Task[None]] = []
        if Role.PROCESS in roles:
            self._tasks.append(group.create_task(self.pipeline.run(stop), name="pipeline"))
        if Role.PROCESS in roles or Role.SCHEDULE in roles:
            # Processing and digests read the roster: it follows the file's changes.
            self._tasks.append(group.create_task(self.roster_watcher.run(stop), name="roster"))
        if Role.SEND in roles:
            self._tasks.append(group.create_task(self.sender.run(stop), name="sender"))
        if Role.SCHEDULE in roles:
            self._tasks.append(group.create_task(self.digests.run(stop), name="digests"))
            self._tasks.append(group.create_task(self.notices.run(stop), name="notices"))
            self._tasks.append(group.create_task(self.retention.run(stop), name="retention"))
            if any(s.expert_mail == "batch" for s in self.config.sessions):
                self._tasks.append(group.create_task(self.batches.run(stop), name="batches"))
        if self.imap is not None:
            self._tasks.append(group.create_task(self._poll(self.imap, stop), name="imap"))

    async def _finish(self, grace_seconds: float) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in pending:
                log.warning(
                    "%s did not finish within %.0f s; cancelled", task.get_name(), grace_seconds
                )
                task.cancel()
        self._quit.set()
        await asyncio.wait(self._support)


async def _first(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


@contextlib.asynccontextmanager
async def _setup_errors_unwrapped() -> AsyncIterator[None]:
    """A stage that found a definite mistake in the settings stops the service with it alone,
    not inside the task group's ExceptionGroup, so the command can print its one line."""
    try:
        yield
    except BaseExceptionGroup as failures:
        mistakes = failures.subgroup(SetupError)
        if mistakes is None:
            raise
        first: BaseException = mistakes
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
