"""Finding the reply token in an expert's reply: in the plus address or the references."""

from __future__ import annotations

import re

from qa_mailer.classify.incoming import Incoming
from qa_mailer.config import Config

_PLUS_TOKEN = re.compile(r"^r([0-9a-f]{20})$")


def reply_tokens(incoming: Incoming, config: Config) -> list[str]:
    """Tokens of our expert mails that this mail replies to, most direct first.

    The plus address (from Reply-To) is what a reply is sent to; In-Reply-To and References
    carry the Message-ID of our mail, which holds the same token, for clients that reply to
    the From address instead.
    """
    found: dict[str, None] = {}
    for recipient in incoming.recipients:
        match = _PLUS_TOKEN.match(config.address.tag_of(recipient) or "")
        if match:
            found[match.group(1)] = None
    pattern = re.compile(
        rf"^<qa\.route\.([0-9a-f]{{20}})@{re.escape(config.address.domain)}>$", re.IGNORECASE
    )
    for message_id in incoming.mail.thread_ids:
        match = pattern.match(message_id)
        if match:
            found[match.group(1).lower()] = None
    return list(found)
