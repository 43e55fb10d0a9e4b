"""What reply parsing gives back: the trimmed reply and the answers found in it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuestionRef:
    """A question that was sent to the expert."""

    ref: str  # "Q-17"
    text: str  # the question text as sent


@dataclass(frozen=True)
class Answer:
    """One answer found in a reply."""

    # The quoted question text the answer sits under, quote markers removed; "" when the
    # answer was given on top by number or reference.
    quoted: str
    # "Q-17" when known: found in the quote, on the answer's own line, or matched by text.
    ref: str | None
    answer: str  # what the replier wrote for it


@dataclass(frozen=True)
class ParsedReply:
    """A reply taken apart."""

    # The trimmed reply: new text with the quoted lines between it; no quote header, trailing
    # quoted history, signature or phone/app tagline.
    reply: str
    # Only the lines the replier wrote: no quoted line at all, no signature or tagline.
    new_text: str
    # The stage before that: the lines the replier wrote with their signature and taglines
    # still in ("Hello\n\n--\nAna\nSent from my iPhone"). Quoted lines, quote headers and
    # the history under them are gone as from new_text. This is what talon's
    # extract_from_plain returns (it strips signatures in a separate step).
    new_text_with_signature: str
    # What the replier wrote before the first quoted question ("" if nothing).
    preamble: str
    # One per answered question, in the order they appear.
    answers: tuple[Answer, ...]
