"""What one expert reply did, for the receipt and the log."""

from __future__ import annotations

from dataclasses import dataclass, field

from qa_mailer.db import Answer, Question


@dataclass
class ReplyOutcome:
    """What one expert reply did: answers published, repeated or held, and why.

    ``hold_reason`` holds the whole message for an organiser; ``ignore_reason`` sets it aside
    (a sender over the limit of unknown tokens). Held answers carry their own reason.
    """

    published: list[Answer] = field(default_factory=list)
    held: list[Answer] = field(default_factory=list)
    # Answers the last check held because they still look like mail history (issue 9): the
    # expert's receipt asks for a correction.
    to_correct: list[Answer] = field(default_factory=list)
    # Questions whose answer in this reply was already published (or already held) word for
    # word: nothing is sent again.
    already_published: list[Question] = field(default_factory=list)
    already_held: list[Question] = field(default_factory=list)
    unanswered: list[Question] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    hold_reason: str | None = None
    ignore_reason: str | None = None
