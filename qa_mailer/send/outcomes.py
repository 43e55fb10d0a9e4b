"""What the relay said to each recipient of a mail, as stored in OutboxMail.outcomes."""

from __future__ import annotations

import hashlib
from typing import Any

from qa_mailer.db import RecipientOutcome
from qa_mailer.db.claims import ClaimedMail
from qa_mailer.send.transport import Refusal


def delivery_name(mail: ClaimedMail) -> str:
    """A name for ``mail`` that is the same on every attempt and unique across databases."""
    digest = hashlib.sha256(mail.rfc_message_id.encode("utf-8", "replace")).hexdigest()[:16]
    return f"qa{mail.id}-{digest}"


def waiting_recipients(
    mail: ClaimedMail, outcomes: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """The recipients ``mail`` still has to reach: no answer yet, or deferred (4xx)."""
    known = mail.outcomes if outcomes is None else outcomes
    return [
        address
        for address in mail.recipients
        if known.get(address, {}).get("outcome") in (None, RecipientOutcome.DEFERRED)
    ]


def describe(mail: ClaimedMail, outcomes: dict[str, dict[str, Any]]) -> str:
    """The refusals and deferrals of ``mail`` in one line, for last_error and the logs."""
    parts = []
    for outcome, label in (
        (RecipientOutcome.REFUSED, "refused for"),
        (RecipientOutcome.DEFERRED, "deferred for"),
    ):
        having = recipients_with(mail, outcomes, outcome)
        if having:
            parts.append(f"{label} {refusals_text(having, outcomes)}")
    return "; ".join(parts)


def refusals_text(addresses: list[str], outcomes: dict[str, dict[str, Any]]) -> str:
    return "; ".join(
        f"{address}: {outcomes[address].get('code') or ''} {outcomes[address].get('text', '')}".replace(
            ":  ", ": "
        ).strip()
        for address in addresses
    )


def recipients_with(
    mail: ClaimedMail, outcomes: dict[str, dict[str, Any]], outcome: RecipientOutcome
) -> list[str]:
    return [a for a in mail.recipients if outcomes.get(a, {}).get("outcome") == outcome]


def answer(refusal: Refusal | None, give_up: bool) -> dict[str, Any]:
    """The outcome of one recipient from the relay's answer to it."""
    if refusal is None:
        return outcome_entry(RecipientOutcome.ACCEPTED, None, "")
    final = refusal.permanent or give_up
    kind = RecipientOutcome.REFUSED if final else RecipientOutcome.DEFERRED
    return outcome_entry(kind, refusal.code, refusal.text)


def outcome_entry(kind: RecipientOutcome, code: int | None, text: str) -> dict[str, Any]:
    if kind == RecipientOutcome.ACCEPTED:
        return {"outcome": kind.value}
    return {"outcome": kind.value, "code": code, "text": storable(text)[:500]}


def storable(text: str) -> str:
    # A relay's answer or an exception may hold anything; PostgreSQL text takes no NUL and
    # no lone surrogate, and a row that cannot be written would stop the outbox.
    cleaned = text.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")
    return cleaned[:2000]
