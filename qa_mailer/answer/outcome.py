"""What one expert reply did, for the receipt and the log."""

from __future__ import annotations

from dataclasses import dataclass, field

from qa_mailer.db import Answer, Question


@dataclass
class ReplyOutcome:
    """What one expert reply did: answers published or held, and why anything was held."""

    published: list[Answer] = field(default_factory=list)
    held: list[Answer] = field(default_factory=list)
    unanswered: list[Question] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    hold_reason: str | None = None
