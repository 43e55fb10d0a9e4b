"""Is this reply really the expert's? Small named checks; the first failure holds the reply."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.addresses import addresses_in, domain_of
from qa_mailer.answer.absence import absence_phrase
from qa_mailer.classify.incoming import Incoming
from qa_mailer.config import Config
from qa_mailer.db import Dispatch, MessageSource, OutboxKind, OutboxMail
from qa_mailer.replies import parse_reply

_RESULT = re.compile(r"\b(dkim|dmarc|spf)\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE)
_PROPERTY = re.compile(
    r"\b(header\.d|header\.i|header\.from|smtp\.mailfrom)\s*=\s*([^\s;]+)", re.IGNORECASE
)


@dataclass(frozen=True)
class CheckContext:
    incoming: Incoming
    dispatch: Dispatch
    config: Config
    # When the expert's copy went out (None: not known to be sent yet).
    copy_sent_at: datetime | None = None

    @property
    def experts(self) -> set[str]:
        session = self.config.session(self.dispatch.session_no)
        return set(session.experts) | set(self.dispatch.experts.split(","))


async def check_context(
    tx: AsyncSession, incoming: Incoming, dispatch: Dispatch, config: Config
) -> CheckContext:
    """The context of the checks, with the time the expert's copy of ``dispatch`` was sent."""
    sent_at = await tx.scalar(
        select(func.min(OutboxMail.sent_at)).where(
            OutboxMail.dispatch_id == dispatch.id, OutboxMail.kind == OutboxKind.ROUTE
        )
    )
    return CheckContext(incoming, dispatch, config, copy_sent_at=sent_at)


class ExpertCheck:
    name: ClassVar[str]
    description: ClassVar[str]
    # True for checks that hold a reply of the expert's as automatic: the expert and the
    # organisers are told (the other checks hold mail whose sender is not proven).
    automatic: ClassVar[bool] = False

    def check(self, context: CheckContext) -> str | None:
        """None when the reply passes, else why it is held."""
        raise NotImplementedError


class SenderIsExpert(ExpertCheck):
    name = "sender-is-expert"
    description = "The From address is one of the session's experts (or one the mail went to)."

    def check(self, context: CheckContext) -> str | None:
        sender = context.incoming.sender
        if sender in context.experts:
            return None
        return f"the reply comes from {sender or 'no address'}, not from an expert of VC{context.dispatch.session_no}"


class SingleSender(ExpertCheck):
    name = "single-sender"
    description = "A Sender header naming someone else means the mail was sent on another's behalf."

    def check(self, context: CheckContext) -> str | None:
        sender = context.incoming.mail.header("Sender")
        if sender is None:
            return None
        others = [a for a in addresses_in(sender) if a not in context.experts]
        return f"sent on the expert's behalf by {others[0]}" if others else None


class Authenticated(ExpertCheck):
    name = "authenticated"
    description = (
        "The topmost trusted Authentication-Results header shows DMARC or aligned DKIM passing."
    )

    def check(self, context: CheckContext) -> str | None:
        return authentication_reason(context.incoming, context.config)


def authentication_reason(incoming: Incoming, config: Config) -> str | None:
    """Why the sender of ``incoming`` is not vouched for as configured, or None.

    The expert's replies and the organisers' commands are checked alike: a trusted header
    that says the From domain failed (or could not be checked) stops the mail, and with
    ``expert_check.require_authentication`` so does the lack of a trusted header.
    """
    if not trusted_ids(incoming, config):
        return None
    domain = domain_of(incoming.sender)
    verdict = trusted_verdict(incoming, config)
    if verdict == "temperror":
        return f"the authentication of {domain} could not be completed (DNS did not answer)"
    if verdict == "fail":
        return f"a trusted Authentication-Results header says the From domain {domain} failed"
    if verdict == "pass":
        return None
    if config.expert_check.require_authentication:
        return f"no trusted Authentication-Results header vouches for {domain}"
    return None


def trusted_verdict(incoming: Incoming, config: Config) -> str | None:
    """What the topmost trusted Authentication-Results says of the From domain, if anything.

    Only the topmost header of a trusted host counts: it was written last, by the host that
    took the mail in (for our listener, by us). A header below it with a trusted id was in the
    mail before that host saw it, so the sender may have written it.
    """
    trusted = trusted_ids(incoming, config)
    header = next(
        (
            h
            for h in incoming.mail.header_all("Authentication-Results")
            if _authserv_id(h) in trusted
        ),
        None,
    )
    return _verdict(header, domain_of(incoming.sender)) if header is not None else None


def trusted_ids(incoming: Incoming, config: Config) -> set[str]:
    """The authserv-ids whose Authentication-Results the check believes for this mail.

    The provider's (``trusted_authserv_ids``) always; our own only for mail our SMTP listener
    took in, since it renames any header claiming our id and writes its own on top. In mail
    fetched over IMAP, or handed over by an MTA through LMTP, our id proves nothing: anyone
    can write it.
    """
    trusted = set(config.expert_check.trusted_authserv_ids)
    authentication = config.authentication
    if incoming.source == MessageSource.SMTP and authentication.verify:
        trusted.add(authentication.authserv_id)
    return trusted


def _authserv_id(header: str) -> str:
    words = header.partition(";")[0].split()
    return words[0].lower() if words else ""


def _verdict(header: str, domain: str) -> str | None:
    """'pass', 'fail', 'temperror' or None (nothing said about ``domain``) for one header."""
    results = header.partition(";")[2]
    verdict: str | None = None
    for method, result, rest in _RESULT.findall(results):
        properties = {k.lower(): v.strip("<>").lower() for k, v in _PROPERTY.findall(rest)}
        subject = properties.get("header.from") or properties.get("header.d") or ""
        subject = subject.rpartition("@")[2]
        if method.lower() not in {"dmarc", "dkim"} or not _aligned(subject, domain):
            continue
        if result.lower() == "pass":
            verdict = "pass"
        elif method.lower() == "dmarc" and result.lower() in {"fail", "permerror"}:
            return "fail"
        elif method.lower() == "dmarc" and result.lower() == "temperror" and verdict is None:
            verdict = "temperror"
    return verdict


def _aligned(signed: str, domain: str) -> bool:
    # Relaxed alignment: the signing domain is the From domain or one of its parents.
    return bool(signed) and (domain == signed or domain.endswith("." + signed))


class NotAnAbsenceNotice(ExpertCheck):
    name = "out-of-office"
    description = "The reply's own text does not say the expert is away (a vacation responder)."
    automatic = True

    def check(self, context: CheckContext) -> str | None:
        mail = context.incoming.mail
        text = parse_reply(text=mail.text_plain, html=mail.html, questions=[]).new_text
        if not text.strip():
            # A reply that is all quote and signature to the parser: read its unquoted lines.
            text = "\n".join(
                line
                for line in (mail.text_plain or "").splitlines()
                if not line.lstrip().startswith(">")
            )
        phrase = absence_phrase(text)
        return f"the reply reads like an out-of-office notice ({phrase!r})" if phrase else None


class NotTooSoon(ExpertCheck):
    name = "too-soon"
    description = "The reply came later than a person could read and answer the expert's copy."
    automatic = True

    def check(self, context: CheckContext) -> str | None:
        minimum = context.config.expert_check.min_reply_seconds
        if minimum <= 0:
            return None
        # A copy not yet recorded as sent was sent, at the earliest, when it was made.
        sent = context.copy_sent_at or context.dispatch.created_at
        seconds = (context.incoming.received_at - sent).total_seconds()
        if seconds >= minimum:
            return None
        return (
            f"the reply came {max(seconds, 0):.0f} s after the expert's copy was sent "
            f"(less than {minimum:g} s: an automatic reply)"
        )


EXPERT_CHECKS: tuple[ExpertCheck, ...] = (
    SenderIsExpert(),
    SingleSender(),
    Authenticated(),
    # Last: only a reply proven to be the expert's is told it looked automatic.
    NotAnAbsenceNotice(),
    NotTooSoon(),
)


def hold_reason(context: CheckContext) -> str | None:
    """Why the reply must wait for an organiser, or None when it may be published."""
    for check in EXPERT_CHECKS:
        reason = check.check(context)
        if reason is not None:
            return f"{check.name}: {reason}"
    return None


def held_as_automatic(reason: str | None) -> bool:
    """Whether ``reason`` (from ``hold_reason``) holds the reply as an automatic one."""
    if reason is None:
        return False
    name = reason.partition(":")[0]
    return any(check.automatic and check.name == name for check in EXPERT_CHECKS)


def authenticated(context: CheckContext) -> bool:
    """True when a trusted Authentication-Results header vouches for the From domain.

    The checks above only hold a reply that fails; this asks more: a positive word from a
    trusted host, which is what lets a reply do what a token alone may not (see guards.py).
    """
    return trusted_verdict(context.incoming, context.config) == "pass"
