"""What went wrong talking to the mailbox or the relay, in one line an organiser can act on.

A connection fails for two kinds of reasons. The server may be away (restarting, the network
down): retrying is right, and the service does. Or the settings are wrong (a refused login, TLS
on a port that speaks plain text, STARTTLS on one that speaks TLS at once, a certificate the
system does not trust): retrying cannot help, and retrying a refused login may get the account
locked by the provider. ``Diagnosis.definite`` tells them apart, and the text names the key to
change. `qa-mailer check` prints these lines; `serve` logs them and stops on a definite one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass

import aiosmtplib

from qa_mailer.config import ImapConfig, SmtpRelayConfig

# How long a TLS handshake may take when we only want to know whether a port speaks TLS.
_PROBE_SECONDS = 5.0


@dataclass(frozen=True)
class Diagnosis:
    """One line saying what is wrong and what to do; ``definite`` when retrying cannot help."""

    text: str
    definite: bool


class SetupError(Exception):
    """A definite mistake in the settings: the service stops instead of retrying."""


class LoginRefused(Exception):
    """The server refused the login (a wrong password, a revoked grant)."""


class Misconfigured(Exception):
    """The server refused what the settings ask for; the message says what and which key."""


class NoGreeting(TimeoutError):
    """The server accepted the connection and said nothing within the timeout."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how we connect: the config table's name, for the hint, and its settings."""

    section: str  # "imap" or "smtp"
    host: str
    port: int
    security: str
    login_hint: str  # what to check when the login is refused


_GRANT_HINT = "the OAuth2 grant (run `qa-mailer auth login`) and the account's IMAP/SMTP access"


def imap_endpoint(config: ImapConfig) -> Endpoint:
    hint = _GRANT_HINT if config.oauth2 else f"${config.password_env}"
    return Endpoint("imap", config.host, config.port, config.security, hint)


def smtp_endpoint(config: SmtpRelayConfig) -> Endpoint:
    hint = (
        _GRANT_HINT
        if config.oauth2
        else f"${config.password_env}"
        if config.password_env
        else "smtp.password_env"
    )
    return Endpoint("smtp", config.host, config.port, config.security, hint)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and the ones it was raised from, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


async def diagnose(exc: BaseException, endpoint: Endpoint) -> Diagnosis:
    """Explain a failure to connect, secure or log in; may probe the port once for TLS."""
    for cause in causes(exc):
        found = _tls(cause, endpoint) or _refusal(cause, endpoint)
        if found is not None:
            return found
    if _no_greeting(exc) and endpoint.security != "tls" and await speaks_tls(endpoint):
        return Diagnosis(
            f'port {endpoint.port} speaks TLS at once: set {endpoint.section}.security = "tls"',
            definite=True,
        )
    for cause in causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return Diagnosis(
                f"nothing listens on {endpoint.host}:{endpoint.port} (is the server up? "
                f"check {endpoint.section}.host and {endpoint.section}.port)",
                definite=False,
            )
        if isinstance(cause, socket.gaierror):
            return Diagnosis(
                f"{endpoint.host} cannot be found ({cause.strerror}): check "
                f"{endpoint.section}.host",
                definite=False,
            )
    if _no_greeting(exc):
        return Diagnosis(
            f"{endpoint.host}:{endpoint.port} accepted the connection but said nothing",
            definite=False,
        )
    return Diagnosis(_describe(exc), definite=False)


def _tls(cause: BaseException, endpoint: Endpoint) -> Diagnosis | None:
    section = endpoint.section
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = cause.verify_message or "not trusted"
        if cause.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return Diagnosis(
                f"the certificate is not for {endpoint.host} ({reason}): set {section}.host "
                "to the name on the certificate",
                definite=True,
            )
        return Diagnosis(
            f"certificate not trusted ({reason}): set {section}.ca_file to the server's "
            "certificate or the CA that signed it",
            definite=True,
        )
    if isinstance(cause, ssl.SSLError) and cause.reason in (
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "HTTP_REQUEST",
    ):
        return Diagnosis(
            f"port {endpoint.port} does not speak TLS at once: set {section}.security = "
            '"starttls" (or "none" on a trusted network), or use the TLS port',
            definite=True,
        )
    return None


def _refusal(cause: BaseException, endpoint: Endpoint) -> Diagnosis | None:
    section = endpoint.section
    where = endpoint.login_hint
    if isinstance(cause, LoginRefused | aiosmtplib.SMTPAuthenticationError):
        detail = cause.message if isinstance(cause, aiosmtplib.SMTPResponseException) else cause
        return Diagnosis(f"login refused ({detail}): check {where}", definite=True)
    if isinstance(cause, Misconfigured):
        return Diagnosis(str(cause), definite=True)
    if isinstance(cause, aiosmtplib.SMTPResponseException):
        return Diagnosis(
            f"the relay answered {cause.code} {cause.message}", definite=cause.code >= 500
        )
    if isinstance(cause, aiosmtplib.SMTPException) and not isinstance(cause, OSError):
        text = str(cause)
        if "STARTTLS extension not supported" in text:
            return Diagnosis(
                f"{endpoint.host}:{endpoint.port} does not offer STARTTLS: set "
                f'{section}.security = "tls" if the port speaks TLS at once (465), or "none" '
                "on a trusted network",
                definite=True,
            )
        if "AUTH extension is not supported" in text:
            return Diagnosis(
                f"{endpoint.host}:{endpoint.port} offers no login here: use TLS "
                f'({section}.security = "tls" or "starttls"), or leave {section}.username out',
                definite=True,
            )
    return None


def _no_greeting(exc: BaseException) -> bool:
    return any(
        isinstance(cause, NoGreeting | aiosmtplib.SMTPConnectTimeoutError) for cause in causes(exc)
    )


async def speaks_tls(endpoint: Endpoint) -> bool:
    """Whether a TLS handshake succeeds on the port (any certificate accepted: only a probe)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port, ssl=context),
            _PROBE_SECONDS,
        )
    except (OSError, TimeoutError):
        return False
    # No TLS goodbye: a server that never answers one would keep the socket open for the
    # 30 s shutdown timeout. Aborting closes it at once.
    writer.transport.abort()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), _PROBE_SECONDS)
    return True


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
