"""What the classification rules look at: the parsed mail and how it reached us."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from qa_mailer.addresses import addresses_in, normalise
from qa_mailer.parse import ParsedMail


@dataclass(frozen=True)
class Incoming:
    """A parsed inbound message with its envelope."""

    mail: ParsedMail
    source: str
    envelope_from: str | None
    envelope_to: tuple[str, ...]
    received_at: datetime

    @property
    def sender(self) -> str:
        """The From address, normalised ("" when the mail has none)."""
        return self.mail.from_address

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every address the mail was delivered or addressed to, envelope first."""
        ordered = dict.fromkeys(normalise(r) for r in self.envelope_to)
        ordered.update(dict.fromkeys((*self.mail.delivered_to, *self.mail.to, *self.mail.cc)))
        return tuple(ordered)

    @property
    def return_path(self) -> str | None:
        """The envelope sender: from SMTP, else the Return-Path header the last MTA wrote."""
        if self.envelope_from is not None:
            return normalise(self.envelope_from)
        header = self.mail.header("Return-Path")
        if header is None:
            return None
        found = addresses_in(header)
        return found[0] if found else ""
