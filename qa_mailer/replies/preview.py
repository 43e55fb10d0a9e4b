"""What each participant would receive from a reply, for ``qa-mailer parse-reply``.

An organiser checking a reply wants the result at a glance: which answer goes to whom, what
is not sent because it names no question of the mail, and which answer the last check
(``leftovers``) would hold. Answers are paired with questions the way the answer desk pairs
them (``qa_mailer.answer.desk.pair_answers``): by reference, and with a single question sent,
an answer without a reference, or else the whole new text, is that question's answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qa_mailer.replies.leftovers import leftover_reason
from qa_mailer.replies.model import ParsedReply, QuestionRef


@dataclass(frozen=True)
class Delivery:
    """One answer as a participant would receive it."""

    ref: str | None  # None when no question was given and the answer named none
    answer: str
    held: str | None  # why the last check would hold it, or None


def deliveries(
    parsed: ParsedReply, questions: Sequence[QuestionRef]
) -> tuple[list[Delivery], list[str]]:
    """(the answers each participant would receive, the answers that would not be sent)."""
    known = [question.ref for question in questions]
    texts: dict[str | None, str] = {}
    unmatched: list[str] = []
    for answer in parsed.answers:
        if not answer.answer.strip():
            continue
        ref = answer.ref
        if ref is None and len(known) == 1:
            ref = known[0]
        if known and ref not in known:
            unmatched.append(answer.answer.strip())
            continue
        previous = texts.get(ref)
        texts[ref] = f"{previous}\n\n{answer.answer}".strip() if previous else answer.answer.strip()
    if not texts and not unmatched and len(known) == 1 and parsed.new_text.strip():
        texts[known[0]] = parsed.new_text.strip()
    return [Delivery(ref, text, leftover_reason(text)) for ref, text in texts.items()], unmatched


def preview_text(parsed: ParsedReply, questions: Sequence[QuestionRef]) -> str:
    """The trimmed reply, then each participant's answer, then what would not be sent."""
    sent, unmatched = deliveries(parsed, questions)
    parts = [parsed.reply or "(the reply is empty once trimmed)", ""]
    if not sent:
        parts.append("== No participant would receive an answer from this reply ==")
    for delivery in sent:
        who = f"the participant who asked {delivery.ref}" if delivery.ref else "its participant"
        parts.append(f"== {delivery.ref or 'Answer'}: what {who} would receive ==")
        parts.append(delivery.answer)
        if delivery.held:
            parts.append(f"(Held for confirmation, not sent: {delivery.held}.)")
        parts.append("")
    for text in unmatched:
        parts.append("== Not sent: this answer names no question of the mail ==")
        parts.extend([text, ""])
    return "\n".join(parts).rstrip() + "\n"
