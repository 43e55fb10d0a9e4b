"""Outgoing mail built once, with its final Message-ID, written straight to the wire bytes.

A mail is composed once, when it is queued, so a retry sends the same bytes. Every mail the
service sends has the same simple shape (a UTF-8 text part, perhaps with an HTML alternative,
and headers we write ourselves), so this module writes it as strings and uses only the C
encoders of ``binascii`` for the bodies and encoded words: building it with the standard
library's email classes took 6 to 8 times longer (bench/bench_compose.py), most of it in
``email.header`` folding and quoted-printable done in Python. Header folding lives in
``headers.py``.

The output follows RFC 5322, RFC 2045-2047 and RFC 2046 for multipart/alternative; the tests
parse every output back with the standard library and compare it with the inputs.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import lru_cache

from qa_mailer.send.headers import (
    addr_spec,
    address_field,
    mailbox,
    msg_id,
    msg_id_field,
    one_line,
    unstructured_field,
)

# The headers build_mail writes itself; an extra header of the same name would make a second
# copy that readers resolve differently. A Bcc header would show the hidden recipients to all.
_RESERVED = frozenset(
    {
        "date",
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "message-id",
        "reply-to",
        "in-reply-to",
        "references",
        "mime-version",
    }
)
_FIELD_NAME = re.compile(r"[!-9;-~]{1,76}")

# RFC 5322 caps a line at 998 octets; a longer body line needs a transfer encoding.
_LONGEST_LINE = 998
# What a 7bit body may hold: printable ASCII, tab and line ends.
_PLAIN_OCTETS = bytes(range(0x20, 0x7F)) + b"\t\n"
_QP_WIDTH = 76
# base64 lines of 76 characters, as RFC 2045 asks.
_B64_WIDTH = 76


def new_message_id(kind: str, domain: str) -> str:
    """A fresh Message-ID in our domain, naming what kind of mail it is (for humans reading)."""
    return f"<qa.{kind}.{secrets.token_hex(8)}@{domain}>"


@dataclass(frozen=True)
class Attachment:
    """A file sent with a mail, base64-encoded in a part of its own."""

    # A plain ASCII file name such as "VC3-questions.csv": no encoding of its own needed.
    filename: str
    # A MIME type, parameters included: "text/csv; charset=utf-8".
    content_type: str
    data: bytes


_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_CONTENT_TYPE = re.compile(r"[a-z]+/[a-z0-9.+-]+(; ?[a-z-]+=[A-Za-z0-9._-]+)*")


@dataclass(frozen=True)
class OutgoingMail:
    """A complete mail as it goes into the outbox."""

    message_id: str
    # The To and Cc addresses (bare addr-specs), in order, each once.
    recipients: tuple[str, ...]
    # The whole message with CRLF line ends, ready for SMTP DATA.
    raw: bytes


def build_mail(
    *,
    sender: tuple[str, str],
    to: Sequence[str],
    subject: str,
    text: str,
    message_id: str,
    date: datetime,
    html: str | None = None,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    cc: Sequence[str] = (),
    attachments: Sequence[Attachment] = (),
) -> OutgoingMail:
    """A complete mail: plain text, or multipart/alternative when ``html`` is given.

    With ``attachments``, the mail is multipart/mixed: the text (or the alternative) first,
    then each file base64-encoded.

    ``sender`` is (display name, address); ``to``, ``cc`` and ``reply_to`` are addresses,
    bare or as ``Name <address>``. The subject is made one line of at most 400 characters.
    Control characters in header values become spaces and runs of spaces become one, so no
    value can start a header of its own. In-Reply-To and References keep only the message
    ids that are well formed (they are copied from mail we received). Raises ValueError for
    an address or our own Message-ID that is not well formed, for a mail without recipients,
    and for an extra header that is malformed or one this function writes itself.
    """
    to_boxes = [mailbox(entry) for entry in to]
    cc_boxes = [mailbox(entry) for entry in cc]
    if not to_boxes and not cc_boxes:
        raise ValueError("a mail needs at least one recipient")
    own_id = msg_id(message_id)
    if own_id is None or "@" not in own_id:
        raise ValueError(f"not a Message-ID: {message_id!r}")
    fields = [
        _date_field(date),
        _from_field(*sender),
    ]
    if to_boxes:
        fields.append(address_field("To", to_boxes))
    if cc_boxes:
        fields.append(address_field("Cc", cc_boxes))
    fields.append(unstructured_field("Subject", one_line(subject)))
    fields.append("Message-ID: " + own_id)
    if reply_to:
        fields.append(address_field("Reply-To", [mailbox(reply_to)]))
    fields.extend(_thread_fields(in_reply_to, references))
    fields.extend(_extra_fields(headers or {}))
    fields.append("MIME-Version: 1.0")
    content_fields, body = _content(text, html)
    if attachments:
        content_fields, body = _mixed(content_fields, body, attachments)
    fields.extend(content_fields)
    head_text = "\r\n".join(fields)
    # Everything in the head is ASCII except an internationalised address, which RFC 6532
    # writes as raw UTF-8 (there is no encoded form of an address); such a mail can only be
    # relayed with SMTPUTF8, which the transport asks for when it sees one.
    head = head_text.encode("ascii") if head_text.isascii() else head_text.encode("utf-8")
    return OutgoingMail(
        message_id=own_id,
        recipients=_recipients(to_boxes + cc_boxes),
        raw=head + b"\r\n\r\n" + body,
    )


def _recipients(boxes: list[tuple[str, str]]) -> tuple[str, ...]:
    # Domains are case-insensitive and local parts are in practice; a mail goes to each once.
    seen: dict[str, str] = {}
    for _, address in boxes:
        seen.setdefault(address.lower(), address)
    return tuple(seen.values())


def _thread_fields(in_reply_to: str | None, references: Sequence[str]) -> Iterator[str]:
    if in_reply_to:
        field = msg_id_field("In-Reply-To", [in_reply_to])
        if field:
            yield field
    if references:
        field = msg_id_field("References", references)
        if field:
            yield field


def _extra_fields(headers: Mapping[str, str]) -> Iterator[str]:
    for name, value in headers.items():
        yield _extra_field(name, value)


# The service writes the same few fields over and over: its From, and extra fields such as
# "Auto-Submitted: auto-replied"; each is worked out once. A field whose value changes from
# mail to mail (X-QA-Question) only passes through the cache.
@lru_cache(maxsize=256)
def _extra_field(name: str, value: str) -> str:
    _check_field_name(name)
    return unstructured_field(name, value)


@lru_cache(maxsize=16)
def _from_field(display_name: str, address: str) -> str:
    return address_field("From", [(display_name, addr_spec(address))])


def _date_field(date: datetime) -> str:
    # The field shows whole seconds and the offset from UTC: the mails composed within one
    # second share it. (Equal times in two offsets are equal datetimes, so the offset is
    # part of the key.)
    return _date_field_of_second(date.replace(microsecond=0), date.utcoffset())


@lru_cache(maxsize=4)
def _date_field_of_second(date: datetime, offset: timedelta | None) -> str:
    return "Date: " + format_datetime(date)


# The same few names come with every mail; checking each once is enough.
@lru_cache(maxsize=64)
def _check_field_name(name: str) -> None:
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"not a header name: {name!r}")
    lowered = name.lower()
    if lowered in _RESERVED or lowered.startswith("content-"):
        raise ValueError(f"build_mail writes {name} itself")


def _content(text: str, html: str | None) -> tuple[list[str], bytes]:
    """The Content-* header fields of the mail and its body."""
    plain = _part("plain", text)
    if html is None:
        return plain
    parts = [plain, _part("html", html)]
    boundary = _boundary([body for _, body in parts])
    delimiter = b"--" + boundary.encode("ascii")
    body = b""
    for part_fields, part_body in parts:
        # The CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1), so the
        # line end that ends each part's text stays part of that text.
        body += delimiter + b"\r\n" + "\r\n".join(part_fields).encode("ascii")
        body += b"\r\n\r\n" + part_body + b"\r\n"
    body += delimiter + b"--\r\n"
    return [f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"'], body


def _mixed(
    fields: list[str], body: bytes, attachments: Sequence[Attachment]
) -> tuple[list[str], bytes]:
    """The text (or alternative) part and the attachments as one multipart/mixed body."""
    parts = [(fields, body)] + [_attachment_part(a) for a in attachments]
    boundary = _boundary([part_body for _, part_body in parts])
    delimiter = b"--" + boundary.encode("ascii")
    chunks = []
    for part_fields, part_body in parts:
        chunks += [delimiter, b"\r\n", "\r\n".join(part_fields).encode("ascii")]
        chunks += [b"\r\n\r\n", part_body, b"\r\n"]
    chunks.append(delimiter + b"--\r\n")
    return [f'Content-Type: multipart/mixed;\r\n boundary="{boundary}"'], b"".join(chunks)


def _attachment_part(attachment: Attachment) -> tuple[list[str], bytes]:
    if not _FILENAME.fullmatch(attachment.filename):
        raise ValueError(f"not a plain file name: {attachment.filename!r}")
    if not _CONTENT_TYPE.fullmatch(attachment.content_type):
        raise ValueError(f"not a content type: {attachment.content_type!r}")
    fields = [
        f"Content-Type: {attachment.content_type}",
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{attachment.filename}"',
    ]
    return fields, _base64(attachment.data)


def _part(subtype: str, text: str) -> tuple[list[str], bytes]:
    encoding, body = encode_body(text)
    fields = [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: " + encoding,
    ]
    return fields, body


def _boundary(bodies: list[bytes]) -> str:
    # "=_" cannot occur in quoted-printable or base64 output; a 7bit part could hold anything,
    # so a boundary that one of them happens to contain is drawn again.
    while True:
        boundary = "=_qa_" + secrets.token_hex(12)
        if not any(boundary.encode("ascii") in body for body in bodies):
            return boundary


def encode_body(text: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded body with CRLF line ends) of a UTF-8 text part.

    The text gets a final line end if it has none; CR, LF and CRLF are all line ends.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    # Lone surrogates (from undecodable bytes somewhere upstream) become "?", not a crash.
    data = text.encode("utf-8", "replace")
    # Octets quoted-printable would escape: not ASCII, or control characters other than tab
    # and line end (which are escaped rather than sent raw). bytes.translate runs in C.
    escaped = len(data.translate(None, _PLAIN_OCTETS))
    if not escaped and _fits_7bit(text):
        return "7bit", data.replace(b"\n", b"\r\n")
    data = data.replace(b"\n", b"\r\n")
    if _mostly_plain(escaped, len(data)):
        return "quoted-printable", _quoted_printable(data)
    return "base64", _base64(data)


def _fits_7bit(text: str) -> bool:
    # A line starting "From " goes quoted-printable, where it can be escaped: an mbox store
    # on the way would otherwise change it to ">From ".
    return (
        not text.startswith("From ")
        and "\nFrom " not in text
        and max(map(len, text.split("\n"))) <= _LONGEST_LINE
    )


def _mostly_plain(escaped: int, size: int) -> bool:
    # Quoted-printable writes an escaped octet as three characters and leaves the rest
    # readable; base64 writes every octet as 4/3 characters plus line ends. Latin text
    # (Croatian 5-15% escaped octets, Turkish up to 20%, an English template quoting a short
    # Cyrillic subject 25%) stays readable at a small cost in size; text mostly in another
    # script (a Cyrillic question: 50-90%) goes base64, at less than half the size.
    return escaped * 3 <= size


def _quoted_printable(data: bytes) -> bytes:
    # istext=True with CRLF input: b2a_qp keeps CRLF as hard line ends, writes soft line
    # breaks as "=\r\n" and escapes white space at the end of a line and "=".
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    lines = encoded.split(b"\r\n")
    if _needs_repair(encoded, lines):
        encoded = b"\r\n".join(repaired for line in lines for repaired in _repaired_qp_line(line))
    return encoded


def _needs_repair(encoded: bytes, lines: list[bytes]) -> bool:
    # What b2a_qp leaves to us: a line starting "From " (an mbox store on the way would turn
    # it into ">From "), a lone "." after a soft line break (the end of data to a careless
    # SMTP relay), and a line over 76 characters, which b2a_qp writes when it escapes white
    # space at the end of a full line. Substring tests and one split are far cheaper than a
    # regular expression over the whole body.
    return (
        encoded.startswith((b"From ", b".\r\n"))
        or b"\nFrom " in encoded
        or b"\n.\r\n" in encoded
        or max(map(len, lines)) > _QP_WIDTH
    )


def _repaired_qp_line(line: bytes) -> Iterator[bytes]:
    """One quoted-printable line as one or more lines that need no further care."""
    while True:
        if line.startswith(b"From "):
            line = b"=46" + line[1:]
        elif line == b".":
            line = b"=2E"
        if len(line) <= _QP_WIDTH:
            yield line
            return
        cut = _QP_WIDTH - 1
        # Never split an escape: "=" only ever starts one (or is a final soft break), and
        # hex digits are never "=", so looking two characters back is enough.
        if line[cut - 1] == ord("="):
            cut -= 1
        elif line[cut - 2] == ord("="):
            cut -= 2
        yield line[:cut] + b"="
        line = line[cut:]


def _base64(data: bytes) -> bytes:
    encoded = binascii.b2a_base64(data, newline=False)
    # A list, not a generator: join() builds one from a generator first anyway.
    lines = [encoded[start : start + _B64_WIDTH] for start in range(0, len(encoded), _B64_WIDTH)]
    return b"\r\n".join(lines) + b"\r\n"
