"""Reply files for the command line: read a body from disk, write a parse as JSON.

``qa-mailer parse-reply FILE [--json] [--questions FILE.json]`` reads an ``.eml`` (its
text/plain and text/html parts), a ``.txt`` body or an ``.html``/``.htm`` body.
"""

from __future__ import annotations

import codecs
import email
import email.message
import json
import re
from email import policy
from pathlib import Path
from typing import Any

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
    """Decode bytes by their declared charset, else UTF-8, else Windows-1252; never fails."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16")):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    if data.startswith(codecs.BOM_UTF16_BE):
        return data.decode("utf-16", errors="replace")
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(codecs.lookup(candidate.strip().strip("\"'")).name)
        except (LookupError, UnicodeError, ValueError):
            continue
    return data.decode("windows-1252", errors="replace")


def _looks_like_mail(data: bytes) -> bool:
    head = data[:_SNIFF].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return len(_MAIL_HEADER.findall(head)) >= 2


def _mail_bodies(data: bytes) -> tuple[str | None, str | None]:
    message = email.message_from_bytes(data, policy=policy.default)
    text: str | None = None
    html: str | None = None
    for part in message.walk():
        try:
            if part.get_content_disposition() == "attachment":
                continue
            if part.is_multipart():
                continue
            kind = part.get_content_type()
            if kind.startswith("multipart/"):
                # A multipart whose boundary never comes is left as one string: the body.
                kind = "text/plain"
        except (ValueError, TypeError, IndexError, AttributeError):
            continue
        if kind == "text/plain" and text is None:
            text = _part_text(part)
        elif kind == "text/html" and html is None:
            html = _part_text(part)
    return text, html


def _part_text(part: email.message.Message) -> str | None:
    if isinstance(part, email.message.EmailMessage) and part.get_content_maintype() == "text":
        try:
            content = part.get_content()
        except (LookupError, UnicodeError, ValueError, AssertionError, TypeError):
            content = None
        if isinstance(content, str):
            return content
    # An unknown or lying charset: decode the raw bytes ourselves.
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError):
        payload = None
    if isinstance(payload, bytes):
        return decode(payload, part.get_content_charset())
    raw = part.get_payload()
    return raw if isinstance(raw, str) else None


def parsed_reply_to_json(parsed: ParsedReply) -> dict[str, Any]:
    """A JSON-ready dict of a parse: reply, new_text, preamble and answers."""
    return {
        "reply": parsed.reply,
        "new_text": parsed.new_text,
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
