"""Reply tokens: made, written into the expert's mail, and found again in the reply; one module.

A mail to the expert carries two things a reply can bring back:

- the **token**, a secret, in the Reply-To plus address (``qa+r<token>@...``). A reply sent to
  that address proves its sender saw our mail: only the expert's mailbox received it. It never
  appears anywhere else: not in a Message-ID, not in a log line.
- the **route key**, in the Message-ID (``<qa.route.<key>@...>``). It is random and tells
  nothing about the token, so it only says which mail a reply answers, for clients that drop
  the plus address and reply to the plain Q&A address. It proves nothing: every relay on the
  way logs Message-IDs, and every reply, forward and quote copies them into References.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa_mailer.config import Config

# Only a type here: the digest and the expert's copy make reply addresses without the mail
# parser, which classify/incoming.py brings.
if TYPE_CHECKING:
    from qa_mailer.classify.incoming import Incoming

_PLUS_TOKEN = re.compile(r"^r([0-9a-f]{20})$")


def new_token() -> str:
    """An unguessable reply token: 80 random bits, in characters every mail system keeps."""
    return secrets.token_hex(10)


def new_route_key() -> str:
    """The random part of an expert mail's Message-ID; unrelated to its token."""
    return secrets.token_hex(10)


def route_message_id(route_key: str, config: Config) -> str:
    """The Message-ID of a mail to the expert: it names the dispatch, not its token."""
    return f"<qa.route.{route_key}@{config.address.domain}>"


def reply_address(token: str, config: Config) -> str:
    """The Reply-To of a mail to the expert: the Q&A address with the token as plus tag."""
    return config.address.tagged(f"r{token}")


@dataclass(frozen=True)
class ReplyKeys:
    """What a reply brings back of our mail: tokens (proof) and route keys (a reference)."""

    tokens: tuple[str, ...] = ()
    route_keys: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.tokens or self.route_keys)


def reply_keys(incoming: Incoming, config: Config) -> ReplyKeys:
    """The tokens in the plus addresses this mail was sent to, and the route keys in its
    In-Reply-To and References, most direct first."""
    tokens: dict[str, None] = {}
    for recipient in incoming.recipients:
        match = _PLUS_TOKEN.match(config.address.tag_of(recipient) or "")
        if match:
            tokens[match.group(1)] = None
    pattern = re.compile(
        rf"^<qa\.route\.([0-9a-f]{{20}})@{re.escape(config.address.domain)}>$", re.IGNORECASE
    )
    keys: dict[str, None] = {}
    for message_id in incoming.mail.thread_ids:
        match = pattern.match(message_id)
        if match:
            keys[match.group(1).lower()] = None
    return ReplyKeys(tuple(tokens), tuple(keys))


# The notice to the organisers carries a token of its own, in the same way: a reply sent to
# ``qa+o<token>@...`` proves its sender received that notice.
_PLUS_NOTICE_TOKEN = re.compile(r"^o([0-9a-f]{20})$")


def notice_reply_address(token: str, config: Config) -> str:
    """The Reply-To of a notice to the organisers: the Q&A address with the notice's token."""
    return config.address.tagged(f"o{token}")


def notice_tokens(incoming: Incoming, config: Config) -> tuple[str, ...]:
    """The notice tokens in the plus addresses this mail was sent to, in order."""
    found: dict[str, None] = {}
    for recipient in incoming.recipients:
        match = _PLUS_NOTICE_TOKEN.match(config.address.tag_of(recipient) or "")
        if match:
            found[match.group(1)] = None
    return tuple(found)


def replies_to_notice(incoming: Incoming, config: Config) -> bool:
    """True when the mail's In-Reply-To or References name a notice of ours."""
    pattern = re.compile(
        rf"^<qa\.notice\.[0-9a-f]+@{re.escape(config.address.domain)}>$", re.IGNORECASE
    )
    return any(pattern.match(message_id) for message_id in incoming.mail.thread_ids)
