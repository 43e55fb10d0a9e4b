"""The entry point: plain or HTML body in, ``ParsedReply`` out."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from qa_mailer.replies.classify import classify
from qa_mailer.replies.history import reread_history
from qa_mailer.replies.html_quotes import html_to_marked_text
from qa_mailer.replies.lines import normalise, split_lines
from qa_mailer.replies.model import ParsedReply, QuestionRef
from qa_mailer.replies.questions import Questions
from qa_mailer.replies.split import split_reply
from qa_mailer.replies.trim import new_text, reply_text

log = logging.getLogger("qa_mailer.replies")


def parse_reply(
    text: str | None = None,
    html: str | None = None,
    questions: Sequence[QuestionRef] = (),
) -> ParsedReply:
    """Trim a reply and split it into answers; never raises."""
    parsed = None
    if html and html.strip():
        parsed = _parse_body(html_to_marked_text(html), questions)
    if text and text.strip() and (parsed is None or not parsed.new_text):
        from_text = _parse_body(text, questions)
        if parsed is None or from_text.new_text:
            parsed = from_text
    return parsed or ParsedReply(reply="", new_text="", preamble="", answers=())


def _parse_body(body: str, questions: Sequence[QuestionRef]) -> ParsedReply:
    lines = classify(split_lines(normalise(body)))
    known = Questions(questions)
    preamble, answers = split_reply(lines, known)
    if not answers:
        reread = reread_history(lines, known)
        if reread is not None:
            lines = reread
            preamble, answers = split_reply(lines, known)
    return ParsedReply(
        reply=reply_text(lines), new_text=new_text(lines), preamble=preamble, answers=answers
    )
