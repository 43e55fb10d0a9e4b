"""Outgoing mail built once, with its final Message-ID, so a retry sends the same bytes."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime


def new_message_id(kind: str, domain: str) -> str:
    """A fresh Message-ID in our domain, naming what kind of mail it is (for humans reading)."""
    return f"<qa.{kind}.{secrets.token_hex(8)}@{domain}>"


def build_mail(
    *,
    sender: Address,
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
) -> EmailMessage:
    """A complete message: plain text, or multipart/alternative when ``html`` is given."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Subject"] = _one_line(subject)
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
    mail.set_content(text, charset="utf-8", cte="quoted-printable")
    if html is not None:
        mail.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return mail


def _one_line(text: str) -> str:
    # A subject copied from hostile mail may carry line breaks; a header must not.
    return " ".join(text.split())[:400]
