"""One logged-in IMAP connection for the poller, and what it hears besides the answers.

aioimaplib leaves two things to its caller. A command sent on a connection that has gone
waits for its timeout (and the logout after it for another), so the poller used to learn of a
server restart a minute late: here every command also ends the moment the transport closes.
And a server announces new mail (``* n EXISTS``) in the response to whatever command is
running, FETCH, STORE or MOVE included, and never again; aioimaplib drops it during some of
them: here every response line is read for it, so the poller can look again before it idles.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import aioimaplib

from qa_mailer.config import ImapConfig
from qa_mailer.diagnose import LoginRefused, Misconfigured, NoGreeting
from qa_mailer.oauth2 import TokenSource, choose_mechanism, oauthbearer

_EXISTS = re.compile(rb"^\* \d+ EXISTS$")

T = TypeVar("T")


class ImapError(Exception):
    """The server refused something the poller needs."""


class ImapLoginRefused(ImapError, LoginRefused):
    """The server answered NO to our login."""


class ImapMisconfigured(ImapError, Misconfigured):
    """The server refused what the settings ask for (STARTTLS, the mailbox)."""


class ConnectionLost(OSError):
    """The server closed the connection (a restart, a network failure, an idle timeout)."""


class _Protocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    """aioimaplib's protocol, noting every untagged EXISTS the server sends.

    aioimaplib hands an untagged response to the command it belongs to, and drops one that
    arrives while an asynchronous command (SEARCH, FETCH, STORE, COPY) runs, logging
    "ignored untagged response". Every response line passes through ``_handle_line`` (the
    literals, that is the mail itself, do not), so this is the one place that sees them all.
    """

    announced = False

    def _continuation(self, line: bytes) -> None:
        # A refused XOAUTH2 or OAUTHBEARER login gets a "+ <error>" challenge first;
        # aioimaplib would wait for the tagged answer forever. A dummy reply ends the exchange
        # (RFC 7628, 3.2.3: a single %x01, base64 "AQ=="; XOAUTH2 takes an empty line), and
        # the server then answers NO.
        pending = self.pending_sync_command
        if pending is not None and pending.name == "AUTHENTICATE":
            bearer = pending.args[:1] == ("OAUTHBEARER",)
            self.transport.write(b"AQ==\r\n" if bearer else b"\r\n")
            return
        super()._continuation(line)

    def _handle_line(self, line: bytes, current_cmd: aioimaplib.Command | None) -> object:
        if _EXISTS.match(line):
            self.announced = True
        return super()._handle_line(line, current_cmd)


class _Client(aioimaplib.IMAP4):  # type: ignore[misc]
    """aioimaplib's client, built on the protocol above (the same three lines as its own)."""

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = _Protocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )


class ImapConnection:
    """A logged-in client whose commands time out, fail at once when it drops, and report
    whether the server announced new mail in any response since ``announced`` was cleared."""

    def __init__(self, client: _Client, lost: asyncio.Event, timeout: float):
        self.client = client
        self.lost = lost
        self.timeout = timeout

    @property
    def announced(self) -> bool:
        """Whether the server announced new mail (``* n EXISTS``) since this was cleared.

        Mail announced in the middle of a round may be newer than the round's search, and
        the server will not announce it again: it must be looked for before going idle.
        """
        return bool(self.client.protocol.announced)

    @announced.setter
    def announced(self, value: bool) -> None:
        self.client.protocol.announced = value

    async def command(self, call: Awaitable[aioimaplib.Response]) -> aioimaplib.Response:
        """Run one IMAP command: its response, or ConnectionLost or TimeoutError."""
        return await self.wait(call, self.timeout)

    async def wait(self, call: Awaitable[T], timeout: float | None) -> T:
        """Await ``call``, but give up the moment the connection drops, or after ``timeout``."""
        if self.lost.is_set():
            _discard(call)
            raise ConnectionLost("the connection is closed")
        task = asyncio.ensure_future(call)
        dropped = asyncio.ensure_future(self.lost.wait())
        try:
            done, _ = await asyncio.wait(
                {task, dropped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            dropped.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        if self.lost.is_set():
            raise ConnectionLost("the server closed the connection")
        raise TimeoutError(f"no answer within {timeout:.0f} s")

    def has_capability(self, name: str) -> bool:
        return bool(self.client.has_capability(name))

    async def logout(self) -> None:
        """Say goodbye if the connection is still there, then close it either way."""
        if not self.lost.is_set():
            with contextlib.suppress(OSError, TimeoutError, aioimaplib.AioImapException):
                await self.wait(self.client.logout(), self.timeout)
        close(self.client)


class Outage:
    """Logs a lost connection once when it goes and once when it is back.

    Reconnection attempts in between are logged at DEBUG, unless the cause changes from an
    absent server to a refusal (or back): that is news an operator needs.
    """

    def __init__(self, account: str, log: logging.Logger):
        self._account = account
        self._log = log
        self._since: float | None = None
        self._away: bool | None = None
        self._announced = False

    def failed(self, cause: str, away: bool, delay: float) -> None:
        loop = asyncio.get_running_loop()
        level = logging.WARNING if self._since is None or away != self._away else logging.DEBUG
        self._log.log(level, "IMAP %s: %s; reconnecting in %.1f s", self._account, cause, delay)
        if self._since is None:
            self._since = loop.time()
        self._away = away

    def over(self, mailbox: str, messages: int, idle: bool) -> None:
        """Log the connection: once when the poller first gets in, once after each outage."""
        if self._since is not None:
            took = asyncio.get_running_loop().time() - self._since
            self._log.info("IMAP %s: connected again after %.1f s", self._account, took)
        elif not self._announced:
            self._log.info(
                "IMAP %s: connected; %s holds %d messages; %s",
                self._account,
                mailbox,
                messages,
                "waiting for new mail with IDLE" if idle else "polling (no IDLE)",
            )
        self._announced = True
        self._since, self._away = None, None


def server_away(exc: BaseException) -> bool:
    """True when the server is not there (as in a restart), not when it refused us."""
    if isinstance(exc, ssl.SSLError | ImapError | aioimaplib.AioImapException):
        return False
    return isinstance(exc, OSError | TimeoutError)


async def connect(config: ImapConfig, tokens: TokenSource | None = None) -> ImapConnection:
    """Connect, secure (TLS or STARTTLS) and log in (with XOAUTH2 when ``imap.auth`` says so,
    with an access token from ``tokens``)."""
    context = _ssl_context(config) if config.security != "none" else None
    client = _Client(
        config.host,
        config.port,
        timeout=config.timeout_seconds,
        ssl_context=context if config.security == "tls" else None,
    )
    lost = asyncio.Event()
    client.protocol.conn_lost_cb = lambda _exc: lost.set()
    connection = ImapConnection(client, lost, config.timeout_seconds)
    try:
        # A server going down may accept a connection and never greet: the closing socket
        # ends the wait, not the timeout.
        try:
            await connection.wait(client.wait_hello_from_server(), config.timeout_seconds)
        except TimeoutError:
            # A port that speaks TLS at once waits for our handshake and says nothing.
            raise NoGreeting(f"no greeting within {config.timeout_seconds:.0f} s") from None
        if config.security == "starttls":
            assert context is not None
            await connection.wait(_starttls(client, context, config), None)
        if config.oauth2 is not None:
            if tokens is None:
                tokens = TokenSource(config.oauth2)
            response = await _oauth_login(connection, config, await tokens.access_token())
            if response.result != "OK":
                # Perhaps revoked a moment ago: the next attempt asks for a new token.
                tokens.forget()
        else:
            response = await connection.command(client.login(config.username, config.password()))
        if response.result != "OK":
            raise ImapLoginRefused(
                f"{config.username}: {text_of(response.lines) or response.result}"
            )
    except BaseException:
        close(client)
        raise
    return connection


async def _oauth_login(
    connection: ImapConnection, config: ImapConfig, token: str
) -> aioimaplib.Response:
    """AUTHENTICATE with XOAUTH2 or OAUTHBEARER (RFC 7628), as oauth2.mechanism chooses."""
    assert config.oauth2 is not None
    protocol = connection.client.protocol
    offered = {
        c.removeprefix("AUTH=").upper() for c in protocol.capabilities if c.startswith("AUTH=")
    }
    mechanism = choose_mechanism(config.oauth2.mechanism, offered, "imap")
    if mechanism == "XOAUTH2":
        # aioimaplib's own XOAUTH2 (the same initial response as oauth2.xoauth2) keeps the
        # token out of its log and moves the connection to the authenticated state.
        response: aioimaplib.Response = await connection.command(
            protocol.xoauth2(config.username, token)
        )
    else:
        response = await connection.command(_oauthbearer(protocol, config, token))
    if response.result == "OK":
        # The capabilities change after login, as after LOGIN (aioimaplib does this there).
        await connection.command(protocol.capability())
    return response


async def _oauthbearer(
    protocol: aioimaplib.IMAP4ClientProtocol, config: ImapConfig, token: str
) -> aioimaplib.Response:
    initial = oauthbearer(config.username, token, config.host, config.port)
    command = aioimaplib.Command(
        "AUTHENTICATE",
        protocol.new_tag(),
        "OAUTHBEARER",
        base64.b64encode(initial.encode()).decode("ascii"),
        loop=protocol.loop,
    )
    response: aioimaplib.Response = await protocol.execute(command, scrub=token)
    if response.result == "OK":
        protocol.state = aioimaplib.AUTH
    return response


async def _starttls(client: aioimaplib.IMAP4, context: ssl.SSLContext, config: ImapConfig) -> None:
    # aioimaplib has no STARTTLS: issue the command, then upgrade the transport in place.
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise ImapMisconfigured(
            f"{config.host}:{config.port} does not offer STARTTLS: set imap.security = "
            '"tls" if the port speaks TLS at once (993), or "none" on a trusted network'
        )
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    response = await asyncio.wait_for(protocol.execute(command), config.timeout_seconds)
    if response.result != "OK":
        raise ImapError(f"STARTTLS refused: {text_of(response.lines)}")
    loop = asyncio.get_running_loop()
    protocol.transport = await asyncio.wait_for(
        loop.start_tls(protocol.transport, protocol, context, server_hostname=config.host),
        config.timeout_seconds,
    )
    # Capabilities may change once the channel is secure (LOGIN is often offered only then).
    await asyncio.wait_for(protocol.capability(), config.timeout_seconds)


def _ssl_context(config: ImapConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)


def close(client: aioimaplib.IMAP4) -> None:
    """Close the transport without a word to the server.

    Aborted, not closed: closing TLS sends close_notify and keeps the socket open until the
    server's answer (up to 30 s), and an event loop that ends meanwhile leaves the socket
    unclosed.
    """
    transport = client.protocol.transport
    if transport is not None:
        transport.abort()


async def search_uids(connection: ImapConnection, criteria: str) -> list[int]:
    """The UIDs UID SEARCH ``criteria`` finds in the selected mailbox, in order."""
    response = await connection.command(connection.client.uid_search(criteria, charset=None))
    if response.result != "OK":
        raise ImapError(f"UID SEARCH {criteria} refused: {text_of(response.lines)}")
    # aioimaplib strips "* SEARCH" from the data lines ("3 4 5"); the last line is the
    # tagged status. A line that is not all numbers ("7 EXISTS") holds no UIDs.
    uids: list[int] = []
    for line in response.lines[:-1]:
        if not isinstance(line, bytes):
            continue
        tokens = line.split()
        if tokens[:1] == [b"SEARCH"]:
            tokens = tokens[1:]
        if all(token.isdigit() for token in tokens):
            uids.extend(int(token) for token in tokens)
    return sorted(uids)


def text_of(lines: Iterable[bytes | bytearray]) -> str:
    """Response lines as text, for error messages (literals left out)."""
    return " ".join(
        bytes(line).decode("utf-8", "replace") for line in lines if isinstance(line, bytes)
    )


def _discard(call: Awaitable[object]) -> None:
    # A coroutine that is never awaited would warn; close it quietly.
    if asyncio.iscoroutine(call):
        call.close()
