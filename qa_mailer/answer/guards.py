"""What a reply may do even when it comes from the expert: guards against replays and forgeries.

The expert checks (checks.py) ask who sent a reply. These ask what the reply is allowed to
do. A token may be old, or may have been seen by someone else (a forwarded mail, a copied
quote), and a reply can be sent again. So:

- a reply that brings back no token, only a reference to our mail, is held unless a trusted
  host vouches for its sender: a Message-ID is no secret (relays log it, replies copy it);
- a token is good until some days after its session (``answers.token_valid_days``);
- an answer already published (or held) word for word is not published again;
- a further, different answer to an answered question waits for an organiser unless a
  trusted host vouches for its sender: a late forgery with an old token looks just like it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from qa_mailer.answer.checks import CheckContext
from qa_mailer.db import Answer, AnswerState, Question, QuestionState


@dataclass(frozen=True)
class ReplyContext:
    """An expert reply matched to its dispatch, with how it was matched."""

    check: CheckContext
    # The reply was sent to the plus address with the token, not only matched by reference.
    carries_token: bool
    # A trusted Authentication-Results header vouches for the sender's domain.
    vouched: bool
    now: datetime


class ReplyGuard:
    name: ClassVar[str]
    description: ClassVar[str]

    def check(self, context: ReplyContext) -> str | None:
        """None when the reply may go on, else why it is held."""
        raise NotImplementedError


def token_expiry(context: CheckContext, days: float) -> datetime:
    """When the dispatch's token stops being good: days after the session's end (or after the
    mail was sent, for a question that reached the expert after the session)."""
    session = context.config.session(context.dispatch.session_no)
    return max(session.end, context.dispatch.created_at) + timedelta(days=days)


class TokenInDate(ReplyGuard):
    name = "token-in-date"
    description = "The reply token has not expired (answers.token_valid_days after the session)."

    def check(self, context: ReplyContext) -> str | None:
        days = context.check.config.answers.token_valid_days
        expiry = token_expiry(context.check, days)
        if context.now <= expiry:
            return None
        return (
            f"the reply token expired on {expiry:%Y-%m-%d %H:%M} UTC, {days:g} days after "
            f"VC{context.check.dispatch.session_no}"
        )


class TokenCarried(ReplyGuard):
    name = "token-carried"
    description = "The reply brings back the token, or a trusted host vouches for its sender."

    def check(self, context: ReplyContext) -> str | None:
        if context.carries_token or context.vouched:
            return None
        return (
            "the reply carries no reply token, only a reference to our mail (which proves "
            "nothing), and no trusted Authentication-Results header vouches for its sender"
        )


REPLY_GUARDS: tuple[ReplyGuard, ...] = (TokenInDate(), TokenCarried())


def guard_reason(context: ReplyContext) -> str | None:
    """Why the whole reply must wait for an organiser, or None."""
    for guard in REPLY_GUARDS:
        reason = guard.check(context)
        if reason is not None:
            return f"{guard.name}: {reason}"
    return None


def normalised(text: str) -> str:
    """An answer's text as compared for replays: case, width and spacing do not count."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip().casefold()


def repeated(text: str, earlier: Iterable[Answer]) -> Answer | None:
    """The earlier published or held answer with the same text, if any."""
    wanted = normalised(text)
    for answer in earlier:
        if answer.state != AnswerState.REJECTED and normalised(answer.body) == wanted:
            return answer
    return None


def further_answer_reason(question: Question, vouched: bool) -> str | None:
    """Why a new, different answer to an answered question is held, or None."""
    if question.state != QuestionState.ANSWERED or vouched:
        return None
    return (
        f"further-answer: {question.ref} already has a published answer; a different one "
        "waits for an organiser unless a trusted host vouches for its sender"
    )
