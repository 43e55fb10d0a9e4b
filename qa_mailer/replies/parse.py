"""The entry point: plain or HTML body in, ``ParsedReply`` out."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from qa_mailer.parse.html import html_to_text
from qa_mailer.replies.classify import classify
from qa_mailer.replies.history import reread_history
from qa_mailer.replies.html_quotes import html_to_marked_text
from qa_mailer.replies.lines import MAX_CHARS, normalise, split_lines
from qa_mailer.replies.model import ParsedReply, QuestionRef
from qa_mailer.replies.questions import Questions
from qa_mailer.replies.split import split_reply, split_unquoted
from qa_mailer.replies.trim import new_text, new_text_with_signature, reply_text
from qa_mailer.replies.unquoted import unquoted_reply

log = logging.getLogger("qa_mailer.replies")

_EMPTY = ParsedReply(reply="", new_text="", new_text_with_signature="", preamble="", answers=())


def parse_reply(
    text: str | None = None,
    html: str | None = None,
    questions: Sequence[QuestionRef] = (),
) -> ParsedReply:
    """Trim a reply and split it into answers.

    ``text`` and ``html`` are the decoded plain and HTML bodies (either may be None); HTML
    structure is used first, the plain body when the HTML yields nothing. ``questions`` are
    the questions the mail replied to, used to recognise quoted questions that lost their
    ``[Q-n]`` reference and to number answers listed on top. Never raises.
    """
    known = Questions(tuple(questions))
    try:
        return _parse(text, html, known)
    except Exception:
        # A reply that trips over a bug must still reach the organisers, untrimmed.
        log.exception("reply parsing failed; keeping the body untrimmed")
        return _untrimmed(text, html)


def trimmed_reply(text: str | None = None, html: str | None = None) -> str:
    """``parse_reply(text, html).reply``, without splitting the reply into answers.

    A participant's question is trimmed as a reply is, and only its text is wanted: a body
    that quotes nothing (most questions) is then not also searched for answers. Never raises.
    """
    try:
        return _parse(text, html, Questions(()), answers=False).reply
    except Exception:
        log.exception("reply parsing failed; keeping the body untrimmed")
        return _untrimmed(text, html).reply


def _parse(
    text: str | None, html: str | None, questions: Questions, *, answers: bool = True
) -> ParsedReply:
    parsed = None
    if html and html.strip():
        parsed = _parse_body(html_to_marked_text(html[:MAX_CHARS]), questions, answers)
    if text and text.strip() and (parsed is None or not parsed.new_text):
        from_text = _parse_body(text, questions, answers)
        if parsed is None or from_text.new_text:
            parsed = from_text
    return parsed or _EMPTY


def _parse_body(body: str, questions: Questions, answers: bool = True) -> ParsedReply:
    text = normalise(body)
    unquoted = unquoted_reply(text)
    if unquoted is not None:
        # What the line by line way below gives for a body that quotes nothing. Its reply is
        # the text whatever answers are found in it, so they are only looked for when wanted
        # (below, which lines are the reply depends on the answers found).
        preamble, found = split_unquoted(unquoted.reply, questions) if answers else ("", ())
        return ParsedReply(
            reply=unquoted.reply,
            new_text=unquoted.reply,
            new_text_with_signature=unquoted.with_signature,
            preamble=preamble,
            answers=found,
        )
    return _parse_lines(text, questions)


def _parse_lines(text: str, questions: Questions) -> ParsedReply:
    lines = classify(split_lines(text))
    preamble, answers = split_reply(lines, questions)
    if not answers:
        reread = reread_history(lines, questions)
        if reread is not None:
            lines = reread
            preamble, answers = split_reply(lines, questions)
    return ParsedReply(
        reply=reply_text(lines),
        new_text=new_text(lines),
        new_text_with_signature=new_text_with_signature(lines),
        preamble=preamble,
        answers=answers,
    )


def _untrimmed(text: str | None, html: str | None) -> ParsedReply:
    try:
        body = normalise(text).strip() if text else html_to_text(html or "")
    except Exception:
        log.exception("could not even render the body")
        return _EMPTY
    return ParsedReply(
        reply=body, new_text=body, new_text_with_signature=body, preamble="", answers=()
    )
