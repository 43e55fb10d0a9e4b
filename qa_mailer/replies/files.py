"""Reply files for the command line: read a body from disk, write a parse as JSON.

``qa-mailer parse-reply FILE [--json] [--questions FILE.json]`` reads an ``.eml`` (its
text/plain and text/html parts), a ``.txt`` body or an ``.html``/``.htm`` body.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import Any

from qa_mailer.parse.charsets import decode_guessing, decode_with
from qa_mailer.parse.mail import ParseError, parse_mail
from qa_mailer.replies.model import ParsedReply, QuestionRef

_HTML_SUFFIXES = frozenset({".html", ".htm"})
_TEXT_SUFFIXES = frozenset({".txt", ".text"})
_MAIL_SUFFIXES = frozenset({".eml", ".mbox", ".mail"})
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}charset=[\"']?([\w.:-]{1,40})", re.IGNORECASE)
# Enough of the start of a file to tell mail from a bare body.
_SNIFF = 4096
# Headers every stored mail has; "Q-17: yes" at the top of a bare body is not one of them.
_MAIL_HEADER = re.compile(
    rb"^(?:from|date|subject|message-id|mime-version|received|content-type|return-path):[ \t]",
    re.IGNORECASE | re.MULTILINE,
)


def load_reply_file(path: Path) -> tuple[str | None, str | None]:
    """Read a reply from ``path`` and return its (plain text, HTML) bodies."""
    data = path.read_bytes()
    suffix = path.suffix.casefold()
    known = _MAIL_SUFFIXES | _HTML_SUFFIXES | _TEXT_SUFFIXES
    if suffix in _MAIL_SUFFIXES or (suffix not in known and _looks_like_mail(data)):
        return _mail_bodies(data)
    if suffix in _HTML_SUFFIXES:
        declared = _META_CHARSET.search(data[:_SNIFF])
        return None, decode(data, declared.group(1).decode("ascii") if declared else None)
    return decode(data, None), None


def decode(data: bytes, charset: str | None) -> str:
    """Decode bytes by their declared charset, else by what they look like; never fails."""
    if data.startswith(codecs.BOM_UTF8):
        data, charset = data[len(codecs.BOM_UTF8) :], "utf-8"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    return decode_with(data, charset.strip().strip("\"'")) if charset else decode_guessing(data)


def _looks_like_mail(data: bytes) -> bool:
    head = data[:_SNIFF].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return len(_MAIL_HEADER.findall(head)) >= 2


def _mail_bodies(data: bytes) -> tuple[str | None, str | None]:
    # The same MIME reading as the service, so the command shows what `serve` would see.
    try:
        mail = parse_mail(data)
    except ParseError:
        return decode(data, None), None
    return mail.text_plain, mail.html


def parsed_reply_to_json(parsed: ParsedReply) -> dict[str, Any]:
    """A JSON-ready dict of a parse: reply, new_text (also with its signature), preamble and
    answers."""
    return {
        "reply": parsed.reply,
        "new_text": parsed.new_text,
        "new_text_with_signature": parsed.new_text_with_signature,
        "preamble": parsed.preamble,
        "answers": [
            {"quoted": answer.quoted, "ref": answer.ref, "answer": answer.answer}
            for answer in parsed.answers
        ],
    }


def load_questions(path: Path) -> tuple[QuestionRef, ...]:
    """Read ``[{"ref": "Q-17", "text": "..."}, ...]`` (or ``{"questions": [...]}``) from JSON."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = data.get("questions")
    if not isinstance(data, list):
        raise ValueError('expected a JSON list of {"ref": ..., "text": ...} objects')
    refs: list[QuestionRef] = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not item.get("ref"):
            raise ValueError(
                f'item {index} has no "ref" (expected {{"ref": "Q-17", "text": "..."}})'
            )
        refs.append(QuestionRef(ref=str(item["ref"]), text=str(item.get("text", ""))))
    return tuple(refs)
