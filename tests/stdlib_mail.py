"""The same mails as qa_mailer/send/compose.py, built with the standard library's email classes.

This is how the service built its mail before compose.py wrote the bytes itself; the tests
check both decode alike, and bench/bench_compose.py measures compose.py against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import format_datetime, formataddr
from typing import cast

# UTF-8 bodies in quoted-printable stay readable in the raw message for Latin scripts.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP


# The bytes as they go on the wire: CRLF line ends.
WIRE = compat32.clone(linesep="\r\n")


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
) -> Message:
    """A complete message: plain text, or multipart/alternative when ``html`` is given.

    ``sender`` is (display name, address).
    """
    mail: Message
    if html is None:
        mail = _text_part(text, "plain")
    else:
        mail = MIMEMultipart("alternative")
        mail.attach(_text_part(text, "plain"))
        mail.attach(_text_part(html, "html"))
    mail["From"] = formataddr(sender, charset="utf-8")
    mail["To"] = ", ".join(to)
    mail["Subject"] = _header(_one_line(subject))
    mail["Date"] = format_datetime(date)
    mail["Message-ID"] = message_id
    if reply_to:
        mail["Reply-To"] = reply_to
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = " ".join(references)
    for name, value in (headers or {}).items():
        mail[name] = value
    return mail


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    # A body ends with a line end, as it will on the wire.
    part.set_payload(text if text.endswith("\n") else text + "\n", _UTF8)
    return part


def _header(text: str) -> str:
    # ASCII stays readable as it is; anything else becomes RFC 2047 encoded words. compat32
    # messages take a Header object where a string goes; the stubs only know strings.
    return text if text.isascii() else cast(str, Header(text, "utf-8"))


def _one_line(text: str) -> str:
    # A subject copied from hostile mail may carry line breaks; a header must not.
    return " ".join(text.split())[:400]
