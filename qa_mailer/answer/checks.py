"""Is this reply really the expert's? Small named checks; the first failure holds the reply."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from qa_mailer.addresses import addresses_in, domain_of
from qa_mailer.classify.incoming import Incoming
from qa_mailer.config import Config
from qa_mailer.db import Dispatch

_RESULT = re.compile(r"\b(dkim|dmarc|spf)\s*=\s*([a-z]+)([^;]*)", re.IGNORECASE)
_PROPERTY = re.compile(
    r"\b(header\.d|header\.i|header\.from|smtp\.mailfrom)\s*=\s*([^\s;]+)", re.IGNORECASE
)


@dataclass(frozen=True)
class CheckContext:
    incoming: Incoming
    dispatch: Dispatch
    config: Config

    @property
    def experts(self) -> set[str]:
        session = self.config.session(self.dispatch.session_no)
        return set(session.experts) | set(self.dispatch.experts.split(","))


class ExpertCheck:
    name: ClassVar[str]
    description: ClassVar[str]

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
    description = "A trusted Authentication-Results header shows DMARC or aligned DKIM passing."

    def check(self, context: CheckContext) -> str | None:
        settings = context.config.expert_check
        if not settings.trusted_authserv_ids:
            return None
        domain = domain_of(context.incoming.sender)
        verdicts = [
            verdict
            for header in context.incoming.mail.header_all("Authentication-Results")
            if (verdict := _verdict(header, settings.trusted_authserv_ids, domain)) is not None
        ]
        if "fail" in verdicts:
            return f"a trusted Authentication-Results header says the From domain {domain} failed"
        if "pass" in verdicts:
            return None
        if settings.require_authentication:
            return f"no trusted Authentication-Results header vouches for {domain}"
        return None


def _verdict(header: str, trusted: tuple[str, ...], domain: str) -> str | None:
    """'pass', 'fail' or None (nothing said about ``domain``) for one Authentication-Results."""
    authserv, _, results = header.partition(";")
    words = authserv.split()
    if not words or words[0].lower() not in trusted:
        return None
    verdict: str | None = None
    for method, result, rest in _RESULT.findall(results):
        properties = {k.lower(): v.strip("<>").lower() for k, v in _PROPERTY.findall(rest)}
        subject = properties.get("header.from") or properties.get("header.d") or ""
        subject = subject.rpartition("@")[2]
        if method.lower() not in {"dmarc", "dkim"} or not _aligned(subject, domain):
            continue
        if result.lower() == "pass":
            verdict = "pass"
        elif result.lower() in {"fail", "permerror"} and method.lower() == "dmarc":
            return "fail"
    return verdict


def _aligned(signed: str, domain: str) -> bool:
    # Relaxed alignment: the signing domain is the From domain or one of its parents.
    return bool(signed) and (domain == signed or domain.endswith("." + signed))


EXPERT_CHECKS: tuple[ExpertCheck, ...] = (SenderIsExpert(), SingleSender(), Authenticated())


def hold_reason(context: CheckContext) -> str | None:
    """Why the reply must wait for an organiser, or None when it may be published."""
    for check in EXPERT_CHECKS:
        reason = check.check(context)
        if reason is not None:
            return f"{check.name}: {reason}"
    return None


def authenticated(context: CheckContext) -> bool:
    """True when a trusted Authentication-Results header vouches for the From domain.

    The checks above only hold a reply that fails; this asks more: a positive word from a
    trusted host, which is what lets a reply do what a token alone may not (see guards.py).
    """
    settings = context.config.expert_check
    domain = domain_of(context.incoming.sender)
    verdicts = {
        _verdict(header, settings.trusted_authserv_ids, domain)
        for header in context.incoming.mail.header_all("Authentication-Results")
    }
    return "pass" in verdicts and "fail" not in verdicts
