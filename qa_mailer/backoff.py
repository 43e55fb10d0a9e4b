"""Timing for the stages: backoff with jitter, sleeps a stop request cuts short, periodic work."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each scaled by 50-100% at random.

    The jitter keeps many clients that failed together from retrying together.
    """

    def __init__(self, initial: float, maximum: float, rng: Callable[[], float]):
        self._initial = initial
        self._maximum = maximum
        self._rng = rng
        self._failures = 0

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next try."""
        self._failures += 1
        return delay_after(self._failures, self._initial, self._maximum, self._rng)

    def reset(self) -> None:
        """Record a success: the next failure waits ``initial`` again."""
        self._failures = 0


def delay_after(failures: int, initial: float, maximum: float, rng: Callable[[], float]) -> float:
    """The jittered delay after ``failures`` consecutive failures."""
    base = min(maximum, initial * (1 << min(failures - 1, 32)))
    return base * (0.5 + rng() / 2)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``; return True at once if ``stop`` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def wait_for_wakeup(stop: asyncio.Event, wakeup: asyncio.Event, seconds: float) -> None:
    """Sleep until ``wakeup`` or ``stop`` is set, or ``seconds`` pass, whichever comes first."""
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wakeup.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def every(
    stop: asyncio.Event,
    seconds: float,
    work: Callable[[], Awaitable[object]],
    log: logging.Logger,
    what: str,
) -> None:
    """Run ``work`` every ``seconds`` until ``stop``; a failure is logged and tried again next time."""
    while not stop.is_set():
        try:
            await work()
        except Exception:
            log.exception("%s failed; trying again in %.0f s", what, seconds)
        await wait_or_stop(stop, seconds)
