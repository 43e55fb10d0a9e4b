"""Which session (VC1..VC5) a question belongs to, tried in the order of SESSION_RULES."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from qa_mailer.addresses import ServiceAddress
from qa_mailer.classify.incoming import Incoming
from qa_mailer.config import SessionConfig

# "[VC3]", "VC 3", "vc-3", "Session 3", and the word for session in the programme's languages.
_SUBJECT_TAG = re.compile(
    r"(?<![\w])(?:vc|sessions?|sesij\w*|sesiy\w*|сеси\w*|сесси\w*|сесиј\w*|oturum\w*|seans\w*)"
    r"\s*[-#№:]?\s*(\d{1,2})(?!\d)",
    re.IGNORECASE,
)
_PLUS_TAG = re.compile(r"^(?:vc|session)-?(\d{1,2})$")


@dataclass(frozen=True)
class SessionContext:
    incoming: Incoming
    sessions: tuple[SessionConfig, ...]
    address: ServiceAddress
    thread_session: int | None  # the session of the thread this mail replies to, if any

    def known(self, number: int) -> int | None:
        return number if any(s.number == number for s in self.sessions) else None


class SessionRule:
    name: ClassVar[str]
    description: ClassVar[str]

    def check(self, context: SessionContext) -> int | None:
        raise NotImplementedError


class SubjectTag(SessionRule):
    name = "subject-tag"
    description = "A tag in the subject: [VC3], VC 3, Session 3 (or Сесия/Сессия/Sesija/Oturum 3)."

    def check(self, context: SessionContext) -> int | None:
        for match in _SUBJECT_TAG.finditer(context.incoming.mail.subject):
            number = context.known(int(match.group(1)))
            if number is not None:
                return number
        return None


class PlusAddress(SessionRule):
    name = "plus-address"
    description = "Mail sent to the plus address of a session, such as qa+vc3@..."

    def check(self, context: SessionContext) -> int | None:
        for recipient in context.incoming.recipients:
            tag = context.address.tag_of(recipient)
            match = _PLUS_TAG.match(tag or "")
            if match:
                number = context.known(int(match.group(1)))
                if number is not None:
                    return number
        return None


class ThreadSession(SessionRule):
    name = "thread"
    description = "A reply in a thread keeps the thread's session."

    def check(self, context: SessionContext) -> int | None:
        return context.thread_session


class Schedule(SessionRule):
    name = "schedule"
    description = "The session running when the mail arrived, else the next one, else the last."

    def check(self, context: SessionContext) -> int | None:
        return session_at(context.sessions, context.incoming.arrived_at).number


SESSION_RULES: tuple[SessionRule, ...] = (SubjectTag(), PlusAddress(), ThreadSession(), Schedule())


def session_at(sessions: tuple[SessionConfig, ...], moment: datetime) -> SessionConfig:
    """The session running at ``moment``, else the next to start, else the last to end."""

    for session in sessions:
        if session.start <= moment < session.end:
            return session
    upcoming = [s for s in sessions if s.start > moment]
    if upcoming:
        return min(upcoming, key=lambda s: s.start)
    return max(sessions, key=lambda s: s.end)


def choose_session(context: SessionContext) -> tuple[int, str]:
    """(session number, name of the rule that chose it)."""
    for rule in SESSION_RULES:
        number = rule.check(context)
        if number is not None:
            return number, rule.name
    raise AssertionError("the schedule rule always answers")
