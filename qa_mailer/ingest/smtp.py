"""The SMTP/LMTP listener: mail in, stored raw, and only then a 250."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession

from qa_mailer.addresses import ServiceAddress
from qa_mailer.config import ListenerConfig
from qa_mailer.ingest.authentication import MailAuthenticator, SmtpConversation
from qa_mailer.ingest.store import Envelope, MessageStore

log = logging.getLogger("qa_mailer.ingest")


class IntakeHandler:
    """aiosmtpd handler: accepts mail for the Q&A address (and its plus variants) only."""

    def __init__(
        self,
        store: MessageStore,
        address: ServiceAddress,
        protocol: str,
        authenticator: MailAuthenticator | None = None,
    ):
        self._store = store
        self._address = address
        self._protocol = protocol
        self._authenticator = authenticator

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SmtpSession,
        envelope: SmtpEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        if not self._address.is_ours(address):
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: SmtpEnvelope) -> str:
        raw = envelope.original_content
        if raw is None:
            raw = envelope.content if isinstance(envelope.content, bytes) else b""
        try:
            if self._authenticator is not None:
                # Before storing: the stored mail must carry our verdict, and no claim of a
                # trusted id that nobody trustworthy wrote.
                raw = await self._authenticator.stamp(
                    raw,
                    SmtpConversation(
                        client_ip=_client_ip(session.peer),
                        helo=session.host_name,
                        mail_from=envelope.mail_from,
                    ),
                )
            stored = await self._store.store(
                raw,
                Envelope(
                    source=self._protocol,
                    mail_from=envelope.mail_from,
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    peer=_peer(session.peer),
                ),
            )
        except Exception:
            # The sending MTA keeps the message and retries on a 4xx: nothing is lost while the
            # database is unavailable.
            log.exception("could not store a message from %s; answered 451", envelope.mail_from)
            status = "451 4.3.0 Temporary failure storing the message, try again later"
        else:
            status = f"250 2.0.0 OK stored as {stored.id}"
        if self._protocol == "lmtp":
            # LMTP answers DATA once per recipient; the message is stored once for all of them.
            return "\r\n".join(status for _ in envelope.rcpt_tos)
        return status


def _client_ip(peer: Any) -> str | None:
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None


def _peer(peer: Any) -> str | None:
    if isinstance(peer, tuple) and peer:
        return ":".join(str(p) for p in peer[:2])
    return str(peer) if peer else None


class ListenerError(Exception):
    """The listener's address cannot be taken (in use, not this machine's, no permission)."""


async def start_listener(config: ListenerConfig, handler: IntakeHandler) -> asyncio.Server:
    """Listen in the running event loop (no thread) and return the server to close later."""
    loop = asyncio.get_running_loop()
    protocol = LMTP if config.protocol == "lmtp" else SMTP

    def factory() -> SMTP:
        return protocol(handler, data_size_limit=config.max_message_bytes, loop=loop, timeout=120)

    # Several `serve` processes on one machine share the port (the kernel spreads connections
    # over them); a port held by any other program is still refused.
    try:
        server = await loop.create_server(
            factory, host=config.host, port=config.port, reuse_port=True
        )
    except OSError as exc:
        raise ListenerError(
            f"cannot listen on {config.host}:{config.port} ([listener] host and port): "
            f"{exc.strerror or exc}"
        ) from exc
    log.info("%s listener on %s:%d", config.protocol.upper(), config.host, listening_port(server))
    return server


def listening_port(server: asyncio.Server) -> int:
    """The port a server actually listens on (useful when it was asked for port 0)."""
    return int(server.sockets[0].getsockname()[1])
