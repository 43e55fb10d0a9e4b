"""Telling the organisers by mail that the service stopped on a mistake in its settings.

A refused IMAP login or an OAuth2 grant the provider no longer honours stops `serve` (exit 78),
and a stopped service is silent: nobody reads its log until participants complain. So before it
stops, the service queues an alert to ``programme.organisers`` through the ordinary outbox,
saying what failed and how to fix it, and lets its sender deliver it.

Once per cause per day: the alert's outbox key is ``notice:alert-<cause>@<day>`` (unique, so
two processes that fail together queue it once), and no alert is queued while one of the same
cause is less than a day old (so a service restarted by hand, or by a supervisor, does not mail
the organisers at every start). When the relay is what fails (its login, or the grant it logs in
with), no mail can leave: that is logged as an error, and nothing is queued.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import OutboxKind, OutboxMail
from qa_mailer.db.engine import SessionFactory
from qa_mailer.diagnose import LoginRefused, causes
from qa_mailer.oauth2 import GrantRefused
from qa_mailer.route.mails import service_sender
from qa_mailer.send.compose import OutgoingMail, build_mail, new_message_id
from qa_mailer.send.outbox import enqueue
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.digest")

# At most one alert of a cause in this long.
ALERT_EVERY = timedelta(days=1)
# Outbox refs of alerts start so ("notice:alert-imap-login@20261129"); held-mail notices don't.
ALERT_PREFIX = "alert-"


@dataclass(frozen=True)
class Alert:
    """What stopped the service: a cause (the rate-limit key), the failure and its fix."""

    cause: str  # "imap-login", "oauth2-grant", "imap-settings"
    part: str  # "the mailbox", "the relay"
    problem: str  # the diagnosis line, naming the key or the command


def alert_for(part: str, problem: str, exc: BaseException) -> Alert:
    """The alert for a definite failure of ``part`` ("imap") whose diagnosis is ``problem``."""
    found = list(causes(exc))
    if any(isinstance(c, GrantRefused) for c in found):
        cause = "oauth2-grant"
    elif any(isinstance(c, LoginRefused) for c in found):
        cause = f"{part}-login"
    else:
        cause = f"{part}-settings"
    return Alert(cause, {"imap": "the mailbox", "smtp": "the relay"}.get(part, part), problem)


def relay_depends_on(config: Config, alert: Alert) -> bool:
    """Whether the relay needs what failed, so the alert could never be sent."""
    relay = config.smtp if config.outgoing.transport == "smtp" else None
    if relay is None:
        return False
    if alert.cause.startswith("smtp-"):
        return True
    return alert.cause == "oauth2-grant" and relay.oauth2 is not None


def alert_mail(config: Config, templates: Templates, clock: Clock, alert: Alert) -> OutgoingMail:
    """The alert in the organisers' language; replies to it go to the organisers."""
    rendered = templates.render_mail(
        "alert.txt",
        config.organiser_language,
        service_name=config.service_name,
        part=alert.part,
        problem=alert.problem,
        address=config.address.address,
        grant=alert.cause == "oauth2-grant",
    )
    return build_mail(
        sender=service_sender(config),
        to=list(config.organisers),
        subject=rendered.subject or f"{config.service_name} has stopped",
        text=rendered.text,
        message_id=new_message_id("alert", config.address.domain),
        date=clock.now(),
        reply_to=", ".join(config.organisers) or None,
        headers={"Auto-Submitted": "auto-generated", "X-Loop": config.address.address},
    )


async def queue_alert(
    sessions: SessionFactory, config: Config, templates: Templates, clock: Clock, alert: Alert
) -> int | None:
    """Queue the alert unless one of its cause is recent or it cannot be sent; its outbox id."""
    if relay_depends_on(config, alert):
        log.error(
            "the organisers cannot be told by mail: the relay needs what failed (%s); "
            "fix it and start the service again",
            alert.problem,
        )
        return None
    if not config.organisers:
        log.error("no programme.organisers to tell that the service stopped: %s", alert.problem)
        return None
    now = clock.now()
    ref = f"{ALERT_PREFIX}{alert.cause}@"
    try:
        async with sessions.begin() as tx:
            recent = await tx.scalar(
                select(OutboxMail.id).where(
                    OutboxMail.kind == OutboxKind.NOTICE,
                    OutboxMail.key.startswith(f"{OutboxKind.NOTICE.value}:{ref}"),
                    OutboxMail.created_at > now - ALERT_EVERY,
                )
            )
            if recent is not None:
                log.info("the organisers were told of this (%s) less than a day ago", alert.cause)
                return None
            row = enqueue(
                tx,
                alert_mail(config, templates, clock, alert),
                kind=OutboxKind.NOTICE,
                ref=f"{ref}{now:%Y%m%d}",
                envelope_from=config.address.address,
                clock=clock,
            )
            await tx.flush()
            number = row.id
    except IntegrityError:
        log.info("another process told the organisers of this (%s)", alert.cause)
        return None
    log.warning("organisers told by mail that the service stops: %s", alert.problem)
    return number
