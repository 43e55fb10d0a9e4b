"""Connections to the relay kept open between mails, and the pace mail is handed over at.

Opening a connection (TCP, greeting, EHLO, STARTTLS, login) costs more than sending a small
mail over one that is open, so a sending process keeps up to ``smtp.connections`` of them and
sends one mail at a time over each. A connection the relay closed (its idle timeout, a 421)
is noticed and replaced; one idle for longer than the relays commonly keep them is closed
rather than reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib

log = logging.getLogger("qa_mailer.send")

# Relays close idle connections after one to five minutes (Postfix's smtpd_timeout is 300 s);
# one idle for longer than this is closed by us instead of found dead at the next mail.
IDLE_SECONDS = 30.0

# After these a connection is still in step with the relay (aiosmtplib sent RSET after a
# refusal), so it can carry the next mail; after anything else it is closed.
_CLEAN_FAILURES: tuple[type[BaseException], ...] = (
    aiosmtplib.SMTPRecipientsRefused,
    aiosmtplib.SMTPResponseException,
    aiosmtplib.SMTPNotSupported,
    ValueError,
)


class Unreachable(Exception):
    """No connection could be opened (refused, timed out, a 421 greeting, a failed login)."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class Connection:
    """An open SMTP session; ``reused`` when it carried a mail before this one."""

    client: aiosmtplib.SMTP
    idle_since: float
    reused: bool = False


class RelayConnections:
    """At most ``size`` connections to one relay, lent out one mail at a time."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[aiosmtplib.SMTP]],
        size: int,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._connect = connect
        self._monotonic = monotonic
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(size)
        self.size = size
        # How many connections were opened in all: the logs and tests read it.
        self.opened = 0

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """An open connection for one mail; it goes back to the pool if it is still usable."""
        async with self._slots:
            connection = self._take_idle()
            if connection is None:
                try:
                    client = await self._connect()
                except Exception as exc:
                    raise Unreachable(exc) from exc
                self.opened += 1
                connection = Connection(client, self._monotonic())
            try:
                yield connection
            except BaseException as exc:
                if isinstance(exc, _CLEAN_FAILURES) and connection.client.is_connected:
                    self._put_back(connection)
                else:
                    connection.client.close()
                raise
            if connection.client.is_connected:
                self._put_back(connection)

    def _take_idle(self) -> Connection | None:
        now = self._monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.client.is_connected and now - connection.idle_since < IDLE_SECONDS:
                connection.reused = True
                return connection
            # Closed by the relay meanwhile, or idle too long to trust: a new one is cheaper
            # than a failed mail.
            connection.client.close()
        return None

    def _put_back(self, connection: Connection) -> None:
        connection.idle_since = self._monotonic()
        self._idle.append(connection)

    async def close(self, timeout: float) -> None:
        """Say QUIT on every idle connection and close it; the pool stays usable."""
        idle, self._idle = self._idle, []
        for connection in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await asyncio.wait_for(connection.client.quit(), timeout)
            connection.client.close()


class RateLimit:
    """Spaces hand-overs at least ``1 / per_second`` apart; 0 means no limit.

    Sends share one schedule: each takes the next free moment, so concurrent sends never
    burst above the rate.
    """

    def __init__(
        self,
        per_second: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._monotonic = monotonic
        self._sleep = sleep
        self._next = float("-inf")

    async def wait(self) -> None:
        """Return at this send's moment (at once when there is no limit)."""
        if not self._interval:
            return
        now = self._monotonic()
        moment = max(now, self._next)
        self._next = moment + self._interval
        if moment > now:
            await self._sleep(moment - now)
