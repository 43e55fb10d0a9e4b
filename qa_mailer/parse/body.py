"""The text and HTML bodies, including from mail whose MIME structure is broken."""

from __future__ import annotations

import email
import re
from collections.abc import Iterable
from email.message import Message

from qa_mailer.parse.charsets import decode_guessing, decode_with, is_single_byte

_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,200}?)(?:--)?\s*$", re.MULTILINE)


def joined(parts: Iterable[str] | None) -> str | None:
    """Non-empty text parts joined by a blank line, or None when there are none."""
    texts = [p for p in parts or [] if isinstance(p, str) and p.strip()]
    return "\n\n".join(texts) if texts else None


def repair_charset(message: Message, content_type: str, text: str | None) -> str | None:
    """Redecode a body whose charset was missing or wrong, when the decoded text shows it.

    A replacement character in the text means the parser fell back to UTF-8 with losses; the
    bytes are then decoded again as the code page they most look like.
    """
    if text is None:
        return text
    if "\ufffd" in text:
        repaired = [decode_guessing(p) for p in _payloads(message.walk(), content_type)]
        return joined(repaired) or text
    if text.isascii():
        return text
    parts = [part for part in message.walk() if part.get_content_type() == content_type]
    charsets = [part.get_content_charset() for part in parts]
    # A single-byte label may lie without leaving a trace (KOI8-R labelled windows-1251 reads
    # as other Cyrillic letters): decode_with doubts such labels. Other labels are believed.
    if not any(is_single_byte(charset or "") for charset in charsets):
        return text
    return joined(_decoded(parts, charsets)) or text


def _decoded(parts: list[Message], charsets: list[str | None]) -> Iterable[str]:
    """The text of each part that is a body (not a file), decoded with its charset."""
    for part, charset in zip(parts, charsets, strict=True):
        for payload in _payloads([part]):
            yield decode_with(payload, charset) if charset else decode_guessing(payload)


def recover_bodies(message: Message) -> tuple[str | None, str | None]:
    """Text and HTML from a message the MIME parser could not split.

    A "multipart" without a boundary parameter, or one whose boundary is never found, arrives
    as one string. The boundary is then guessed from the first ``--xyz`` line and the parts are
    parsed again; failing that, the whole payload is the text.
    """
    payload = message.get_payload()
    if not isinstance(payload, str) or not payload.strip():
        return None, None
    match = _BOUNDARY_LINE.search(payload)
    if match and message.get_content_maintype() == "multipart":
        wrapper = f'Content-Type: multipart/mixed; boundary="{match.group(1)}"\n\n{payload}'
        inner = email.message_from_string(wrapper)
        if inner.is_multipart():
            plain = joined(_texts(inner.walk(), "text/plain"))
            html = joined(_texts(inner.walk(), "text/html"))
            if plain or html:
                return plain, html
    raw = message.get_payload(decode=True)
    text = decode_guessing(raw) if isinstance(raw, bytes) else payload
    return (None, text) if message.get_content_type() == "text/html" else (text, None)


def _payloads(parts: Iterable[Message], content_type: str | None = None) -> Iterable[bytes]:
    """The decoded payload of each body part (of ``content_type``, if given), not a file's."""
    for part in parts:
        if content_type is not None and part.get_content_type() != content_type:
            continue
        if part.get_filename() or part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload.strip():
            yield payload


def _texts(parts: Iterable[Message], content_type: str) -> Iterable[str]:
    typed = [part for part in parts if part.get_content_type() == content_type]
    return _decoded(typed, [part.get_content_charset() for part in typed])
