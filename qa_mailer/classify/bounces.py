"""Reading a bounce: which addresses failed, for good or for now, and which mail of ours it was.

Delivery status notifications (RFC 3464) and the common non-standard bounces (Exim, Postfix,
qmail, Exchange, Yahoo, ...) are read by flufl.bounce, Mailman's bounce detectors. The mail
that bounced is named by the Message-ID in the returned headers (the DSN's
text/rfc822-headers or message/rfc822 part), or, in a bounce that only quotes it, by the
first Message-ID line of its text.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import re
from dataclasses import dataclass

from qa_mailer.classify.incoming import Incoming
from qa_mailer.send.verp import VerpTag

_QUOTED_MESSAGE_ID = re.compile(rb"^\s*Message-ID:\s*(<[^>\s]+>)", re.IGNORECASE | re.MULTILINE)
_RETURNED = ("text/rfc822-headers", "message/rfc822", "message/rfc822-headers")


@dataclass(frozen=True)
class BounceReport:
    """What a bounce says: the failed addresses and the Message-ID of the mail it returns."""

    permanent: tuple[str, ...]
    temporary: tuple[str, ...]
    original_message_id: str | None
    # The outbox row the bounce's recipient address names (VERP), still to be verified.
    verp: VerpTag | None = None

    def describe(self) -> str:
        """ "a@x (permanent), b@y (temporary)" for a log line or a reason."""
        return ", ".join(
            [f"{a} (permanent)" for a in self.permanent]
            + [f"{a} (temporary)" for a in self.temporary]
        )


# Who sends bounces; an out-of-office from a person is never read as one (the heuristic
# detectors would find addresses in any text).
_BOUNCERS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"})


def may_be_bounce(incoming: Incoming) -> bool:
    """A delivery report, or mail from the null sender or a mailer daemon."""
    mail = incoming.mail
    return (
        mail.content_type == "multipart/report"
        or mail.header("X-Failed-Recipients") is not None
        or incoming.return_path == ""
        or incoming.sender.partition("@")[0].lower() in _BOUNCERS
    )


def read_bounce(raw: bytes) -> BounceReport | None:
    """The bounce in ``raw``; None when it names no failed address."""
    # Imported here: its detectors take ~50 ms to load, and most processes never see a bounce.
    from flufl.bounce import all_failures

    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    temporary, permanent = all_failures(message)
    hard = sorted({_address(a) for a in permanent} - {""})
    soft = sorted({_address(a) for a in temporary} - {""} - set(hard))
    if not hard and not soft:
        return None
    return BounceReport(tuple(hard), tuple(soft), _original_message_id(message, raw))


def _address(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return text.strip().strip("<>").lower()


def _original_message_id(message: email.message.Message, raw: bytes) -> str | None:
    for part in message.walk():
        if part.get_content_type() not in _RETURNED:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload:
            returned = payload[0]
            if isinstance(returned, email.message.Message) and returned["Message-ID"]:
                return str(returned["Message-ID"]).strip()
        elif isinstance(payload, str):
            found = _QUOTED_MESSAGE_ID.search(payload.encode("utf-8", "replace"))
            if found:
                return found.group(1).decode()
    # Our own Message-ID is the first in the text: the bounce's own header comes first in raw.
    own = message["Message-ID"]
    for found in _QUOTED_MESSAGE_ID.finditer(raw):
        value = found.group(1).decode("ascii", "replace")
        if own is None or value != str(own).strip():
            return value
    return None
