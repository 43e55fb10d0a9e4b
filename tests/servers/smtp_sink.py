"""An aiosmtpd server in the test's event loop that plays the relay and the participants' mailboxes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    at: float = 0.0  # when the mail arrived (time.time())
    # The client's address and port: one per connection it came over.
    peer: tuple[str, int] | None = None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())


@dataclass
class SmtpSink:
    """Collects every message; ``refuse`` makes it answer DATA with that status instead."""

    received: list[Received] = field(default_factory=list)
    refuse: str | None = None
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    # Answer the next MAIL FROM with this status, once (a relay closing an idle session).
    refuse_mail_once: str | None = None
    server: asyncio.Server | None = None
    # A plain attribute: aiosmtpd looks the handler's attributes over, so no property may fail.
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # How many mails it refused with ``refuse``.
    refused: int = 0
    # The sessions that carried mail, so a test can drop their connections.
    servers: set[Any] = field(default_factory=set)

    def drop_connections(self) -> None:
        """Close every connection that carried mail, as a relay restarting does."""
        for server in self.servers:
            if server.transport is not None:
                server.transport.close()
        self.servers.clear()

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_mail_once:
            status, self.refuse_mail_once = self.refuse_mail_once, None
            return status
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.servers.add(server)
        if self.refuse:
            self.refused += 1
            return self.refuse
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                envelope.original_content,
                time.time(),
                tuple(session.peer) if session.peer else None,
            )
        )
        self.arrived.set()
        return "250 OK"

    def message_ids(self) -> list[str]:
        """The Message-IDs of every mail received, sorted (a mail received twice, twice)."""
        return sorted(str(r.message["Message-ID"]) for r in self.received)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]

    def with_header(self, name: str, value: str) -> list[Received]:
        return [r for r in self.received if value in str(r.message.get(name, ""))]
