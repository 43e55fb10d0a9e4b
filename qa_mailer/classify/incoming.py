"""What the classification rules look at: the parsed mail and how it reached us."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from qa_mailer.addresses import addresses_in, normalise
from qa_mailer.parse import ParsedMail
from qa_mailer.parse.headers import date_of

# A receiving server's clock may run a little ahead of ours; a date further ahead, or older
# than any backlog, is not an arrival time.
_CLOCK_SKEW = timedelta(minutes=5)
_OLDEST_BACKLOG = timedelta(days=60)


@dataclass(frozen=True)
class Incoming:
    """A parsed inbound message with its envelope."""

    mail: ParsedMail
    source: str
    envelope_from: str | None
    envelope_to: tuple[str, ...]
    received_at: datetime

    @property
    def arrived_at(self) -> datetime:
        """When the mail reached the Q&A mailbox, which may be long before we took it.

        Mail fetched late (the service was down, an IMAP backlog) arrived when the receiving
        server wrote its Received header: the topmost one, as every server adds its own
        above the ones it got; the lower ones are the sender's to write. Mail that came in
        through our own SMTP listener arrived when we took it.
        """
        if self.source == "smtp":
            return self.received_at
        header = self.mail.header("Received")
        stamped = date_of(header.rpartition(";")[2].strip()) if header else None
        if stamped is None:
            return self.received_at
        if not self.received_at - _OLDEST_BACKLOG <= stamped <= self.received_at + _CLOCK_SKEW:
            return self.received_at
        return min(stamped, self.received_at)

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
