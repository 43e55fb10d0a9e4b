"""Where outgoing mail goes: an SMTP relay (aiosmtplib) or a local Maildir folder."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib
from aiosmtplib.typing import SMTPStatus

from qa_mailer.config import SmtpRelayConfig
from qa_mailer.diagnose import Misconfigured, diagnose, smtp_endpoint
from qa_mailer.oauth2 import GrantRefused, TokenSource, choose_mechanism, oauthbearer
from qa_mailer.send.connections import RateLimit, RelayConnections, Unreachable
from qa_mailer.send.headers import needs_smtputf8

log = logging.getLogger("qa_mailer.send")


class DeliveryError(Exception):
    """Delivery failed for every recipient; ``permanent`` says whether retrying can help.

    ``unreachable`` when the way out could not even be opened (no connection to the relay):
    nothing about this mail was tried.
    """

    def __init__(self, message: str, *, permanent: bool, unreachable: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.unreachable = unreachable


@dataclass(frozen=True)
class Refusal:
    """What the relay answered to one recipient it would not take."""

    code: int
    text: str

    @property
    def permanent(self) -> bool:
        """A 5xx is final; a 4xx may pass on a later attempt."""
        return self.code >= 500


# Recipients the relay refused, each with its answer; empty when all took the mail.
Refusals = dict[str, Refusal]


class Transport(Protocol):
    # The longest one delivery may take; a send still running after it is abandoned.
    timeout_seconds: float
    # How many mails it may be handed at once.
    concurrency: int

    async def close(self) -> None:
        """Let go of what it keeps open between mails (connections); it stays usable."""

    async def reachable(self) -> bool:
        """Whether the way out can be opened now (a connection to the relay), sending nothing."""

    async def send(
        self, envelope_from: str, recipients: Sequence[str], raw: bytes, name: str
    ) -> Refusals:
        """Deliver ``raw``; return the recipients that were refused, or raise DeliveryError.

        A refusal of some or all recipients is an answer, not an error: the caller records
        it per recipient. DeliveryError means nobody got the mail (no connection, the
        message itself refused). ``name`` is the same on every attempt to send one mail and
        differs between mails; a transport that can tell a mail was already delivered uses
        it to deliver it once.
        """


class MaildirTransport:
    """Writes each mail into a Maildir (``new/``), where any mail client can read it.

    The embedded default, so the service runs with no mail server: acknowledgements, expert
    copies, answers and digests all land in ``var/outbox/new``. The file is named after the
    mail, so a second attempt (after a crash between writing and marking it sent) finds it
    there and writes nothing.
    """

    timeout_seconds = 30.0
    # One write at a time: each is synced to disk, which concurrency would not speed up.
    concurrency = 1

    def __init__(self, path: Path):
        self.path = path
        self._host = socket.gethostname().replace("/", "_").replace(":", "_")

    async def close(self) -> None:
        """Nothing is kept open between mails."""

    async def reachable(self) -> bool:
        """A folder is always there to try."""
        return True

    async def send(
        self, envelope_from: str, recipients: Sequence[str], raw: bytes, name: str
    ) -> Refusals:
        # A local delivery agent records the envelope the same way; a Maildir takes any
        # address, internationalised ones too (written in UTF-8, as the mail's own head).
        envelope = f"Return-Path: <{envelope_from}>\r\nX-Envelope-To: {', '.join(recipients)}\r\n"
        await asyncio.to_thread(self._write, envelope.encode("utf-8") + raw, name)
        return {}

    def _write(self, data: bytes, name: str) -> None:
        # Maildir names are "time.unique.host"; the unique part is the mail's own name.
        unique = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        filename = f"{unique}.{self._host}"
        try:
            for folder in ("tmp", "new", "cur"):
                (self.path / folder).mkdir(parents=True, exist_ok=True)
            if self._delivered(filename):
                return
            staging = self.path / "tmp" / filename
            # Write and sync under tmp/, then link into new/: a reader never sees half a
            # mail, and a crash leaves at most this one file in tmp/, rewritten next time.
            with open(staging, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(staging, self.path / "new" / filename)
            os.unlink(staging)
        except OSError as exc:
            raise DeliveryError(
                f"cannot write to {self.path}: {exc.strerror}", permanent=False
            ) from exc

    def _delivered(self, filename: str) -> bool:
        # A mail client that read the mail moved it to cur/ and appended ":2,<flags>"; the
        # usual flags are checked (scanning cur/ for every mail would grow with the folder).
        return any(
            (self.path / folder).exists()
            for folder in (
                f"new/{filename}",
                f"cur/{filename}",
                f"cur/{filename}:2,",
                f"cur/{filename}:2,S",
            )
        )


class SmtpTransport:
    """Hands mail to a relay with aiosmtplib (TLS, STARTTLS or plain, with optional login).

    Connections stay open between mails (up to ``smtp.connections``, one mail at a time on
    each), and mail is handed over no faster than ``smtp.max_per_second``.
    """

    def __init__(self, config: SmtpRelayConfig, tokens: TokenSource | None = None):
        self.config = config
        self._where = f"{config.host}:{config.port}"
        self._refusal_logged: str | None = None
        # With smtp.auth = "oauth2", XOAUTH2 or OAUTHBEARER with an access token instead of
        # the password.
        self._tokens = (tokens or TokenSource(config.oauth2)) if config.oauth2 is not None else None
        # Connect, greet, secure, log in and send: each step has the configured timeout.
        self.timeout_seconds = min(300.0, 4 * config.timeout_seconds)
        self.concurrency = config.connections
        # Loading the trust store takes tens of milliseconds: once per process, not per mail.
        self._context = (
            ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
            if config.security != "none"
            else None
        )
        self.connections = RelayConnections(self._connect, config.connections)
        self.rate = RateLimit(config.max_per_second)

    def _client(self) -> aiosmtplib.SMTP:
        config = self.config
        return aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            tls_context=self._context,
            # With OAuth2 the login is ours (_oauth_login): aiosmtplib knows XOAUTH2 alone.
            username=None if self._tokens else config.username,
            password=config.password(),
            timeout=config.timeout_seconds,
        )

    async def _connect(self) -> aiosmtplib.SMTP:
        """Connect, secure, and log in with the grant when ``smtp.auth = "oauth2"``."""
        client = self._client()
        await client.connect()
        if self._tokens is None:
            return client
        try:
            await self._oauth_login(client, self._tokens)
        except BaseException:
            client.close()
            raise
        return client

    async def _oauth_login(self, client: aiosmtplib.SMTP, tokens: TokenSource) -> None:
        config = self.config
        assert config.oauth2 is not None and config.username is not None
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        offered = {m.upper() for m in client.server_auth_methods}
        mechanism = choose_mechanism(config.oauth2.mechanism, offered, "smtp")
        token = await tokens.access_token()
        try:
            if mechanism == "XOAUTH2":
                await client.auth_xoauth2(config.username, token)
                return
            initial = oauthbearer(config.username, token, config.host, config.port)
            response = await client.execute_command(
                b"AUTH", b"OAUTHBEARER", base64.b64encode(initial.encode())
            )
            if response.code == SMTPStatus.auth_continue:
                # The error challenge (RFC 7628, 3.2.3): a single %x01 ends the exchange.
                response = await client.execute_command(b"AQ==")
            if response.code != SMTPStatus.auth_successful:
                raise aiosmtplib.SMTPAuthenticationError(response.code, response.message)
        except aiosmtplib.SMTPAuthenticationError:
            # Perhaps revoked a moment ago: the next attempt asks for a new token.
            tokens.forget()
            raise

    async def probe(self) -> set[str]:
        """Connect, secure and log in as for a mail, send nothing; the relay's extensions.

        Raises what connecting raised: ``diagnose`` turns it into a line to act on.
        """
        client = await self._connect()
        async with client:
            return set(client.esmtp_extensions)

    async def close(self) -> None:
        """Say QUIT on the connections kept open; the next mail opens a new one."""
        await self.connections.close(self.config.timeout_seconds)

    async def reachable(self) -> bool:
        """Open a connection (greeting, EHLO, TLS, login) and keep it for the next mail."""
        try:
            async with self.connections.connection():
                return True
        except Unreachable:
            return False

    async def send(
        self, envelope_from: str, recipients: Sequence[str], raw: bytes, name: str
    ) -> Refusals:
        international = _international(envelope_from, recipients, raw)
        # RFC 6531: an internationalised address travels only with SMTPUTF8, and its
        # mail's head is UTF-8, so the body is announced as 8-bit MIME too.
        options = ["SMTPUTF8", "BODY=8BITMIME"] if international else []
        try:
            refused = await self._hand_over(envelope_from, recipients, raw, options)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return {error.recipient: Refusal(error.code, error.message) for error in exc.recipients}
        except Unreachable as exc:
            error = await self._error(exc.cause, international)
            if error is None:
                raise exc.cause from None
            # A refused grant or login is not a relay that is away: probing it again and
            # again would only ask the provider for tokens it refuses.
            error.unreachable = not isinstance(
                exc.cause, GrantRefused | Misconfigured | aiosmtplib.SMTPAuthenticationError
            )
            raise error from exc.cause
        except Exception as exc:
            error = await self._error(exc, international)
            if error is None:
                raise
            raise error from exc
        self._refusal_logged = None
        return {rcpt: Refusal(resp.code, resp.message) for rcpt, resp in refused.items()}

    async def _error(self, exc: BaseException, international: str | None) -> DeliveryError | None:
        """What ``exc`` means for the mail; None for what this transport does not expect."""
        if isinstance(exc, GrantRefused):
            # The relay logs in with a grant the provider refused: no mail leaves, not even
            # an alert to the organisers, until someone signs in again.
            self._refused(str(exc))
            return DeliveryError(f"relay: {exc}", permanent=False)
        if isinstance(exc, Misconfigured):
            # The relay offers no mechanism oauth2.mechanism allows: the mail waits for a fix.
            return DeliveryError(f"relay: {exc}", permanent=False)
        if isinstance(exc, aiosmtplib.SMTPNotSupported):
            if international and "SMTPUTF8" in str(exc):
                return DeliveryError(
                    f"the relay does not offer SMTPUTF8, needed for {international}",
                    permanent=True,
                )
            return await self._failure(exc)
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            diagnosis = await diagnose(exc, smtp_endpoint(self.config))
            self._refused(diagnosis.text)
            return DeliveryError(f"relay: {diagnosis.text}", permanent=True)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return DeliveryError(
                f"relay answered {exc.code} {exc.message}", permanent=exc.code >= 500
            )
        if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
            return await self._failure(exc)
        if isinstance(exc, ValueError):
            # aiosmtplib refuses an address it cannot put on a command line safely. (After
            # OSError: a certificate that fails verification is a ValueError too.)
            return DeliveryError(f"cannot be sent: {exc}", permanent=True)
        return None

    async def _hand_over(
        self, envelope_from: str, recipients: Sequence[str], raw: bytes, options: list[str]
    ) -> dict[str, aiosmtplib.SMTPResponse]:
        """One mail transaction over a kept connection; a stale one is replaced once."""
        while True:
            async with self.connections.connection() as connection:
                await self.rate.wait()
                try:
                    refused, _ = await connection.client.sendmail(
                        envelope_from, list(recipients), raw, mail_options=options
                    )
                    return refused
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPSenderRefused) as exc:
                    # A kept connection the relay closed while it was idle fails at its
                    # first command (MAIL FROM), before anything of this mail was taken:
                    # the mail goes at once over a new connection.
                    stale = isinstance(exc, aiosmtplib.SMTPServerDisconnected) or exc.code == 421
                    if not (connection.reused and stale and not connection.client.is_connected):
                        raise
                    log.info("the relay closed a kept connection; opening a new one")
                    connection.client.close()

    def _refused(self, why: str) -> None:
        """Log once (until a mail goes through, or the cause changes) that the relay refuses
        the login: the one failure the organisers cannot be told of by mail."""
        if why != self._refusal_logged:
            log.error("relay %s: %s; no mail can leave, nor tell the organisers", self._where, why)
            self._refusal_logged = why

    async def _failure(self, exc: BaseException) -> DeliveryError:
        # The cause in plain words (no STARTTLS, TLS on a plain port, a certificate not
        # trusted); only a relay that is away is called unreachable.
        diagnosis = await diagnose(exc, smtp_endpoint(self.config))
        if diagnosis.definite:
            return DeliveryError(f"relay: {diagnosis.text}", permanent=False)
        return DeliveryError(f"relay unreachable: {diagnosis.text}", permanent=False)


def _international(envelope_from: str, recipients: Sequence[str], raw: bytes) -> str | None:
    """The first address (else "its header") that makes this mail need SMTPUTF8, or None."""
    for address in (envelope_from, *recipients):
        if needs_smtputf8(address):
            return address
    # Composed mail has 7-bit bodies, so 8-bit octets can only be an address in the head.
    if not raw.partition(b"\r\n\r\n")[0].isascii():
        return "its header"
    return None


def make_transport(
    kind: str, maildir: Path, relay: SmtpRelayConfig | None, tokens: TokenSource | None = None
) -> Transport:
    """The transport the configuration asks for."""
    if kind == "smtp":
        assert relay is not None, "config validation requires [smtp] for the smtp transport"
        return SmtpTransport(relay, tokens)
    return MaildirTransport(maildir)
