"""CPU-heavy work in helper processes: parsing uses the other cores, and fails mail by mail.

Parsing a mail (mail-parser, charset repair, HTML rendering, reply trimming) is pure CPU work
that one Python process does on one core. The processing stage hands it to a small pool of
helper processes and does the database work meanwhile. A helper that crashes or hangs on a
hostile mail does not take the service with it: the work it had is done again item by item
in fresh helpers, and an item that breaks a helper again fails alone with a reason.

With no helper processes (``processes = 0``) the work is done here, in between other tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None

log = logging.getLogger("qa_mailer.offload")

T = TypeVar("T")
R = TypeVar("R")

# The size asked for the pipes to and from the helpers (Linux's limit for a process without
# privileges). A chunk's results (parsed mails) are a few hundred KB: through a pipe of the
# default 64 KB, a helper writes them piece by piece, each time waiting for this process to
# read, which it does only when its reading thread gets the interpreter lock from the event
# loop, milliseconds later. Through a wide pipe the helper hands a chunk over at once and goes
# on with the next one. Measured with one helper (2,000 questions, SQLite / PostgreSQL): 1,204-
# 1,333 / 1,098-1,286 msg/s, against 1,058-1,127 / 859-1,050 with the default pipes.
PIPE_BYTES = 1 << 20

# How long closing waits for the helpers to finish what they have in hand (a chunk takes tens
# of milliseconds); one still working then is hung on a mail, and is killed.
CLOSE_SECONDS = 5.0

# Items sent to a helper at a time: enough to make the hand-over cheap, few enough that the
# helpers take turns.
CHUNK = 25


@dataclass(frozen=True)
class Failed:
    """An item whose work could not be done: its helper died or ran out of time twice."""

    reason: str


class HelpersUnavailable(Exception):
    """Helpers cannot even start (or do nothing at all): the work must be done elsewhere."""


class Offload(Generic[T, R]):
    """Runs ``work`` (a module-level function: items in, one result per item out) in helpers."""

    def __init__(
        self,
        work: Callable[[Sequence[T]], list[R]],
        processes: int,
        timeout: float,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ):
        self._work = work
        self._processes = processes
        self._timeout = timeout
        self._initializer = initializer
        self._initargs = initargs
        self._pool: ProcessPoolExecutor | None = None

    async def map(self, items: Sequence[T]) -> list[R | Failed]:
        """``work`` over ``items``, in order; an item that broke its helper gets a Failed."""
        if self._processes == 0:
            return await self._here(items)
        chunks = [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]
        pool = self._started()
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(pool, self._work, chunk) for chunk in chunks]
        results: list[R | Failed] = []
        try:
            for index, future in enumerate(futures):
                # A chunk waits behind the ones before it: its deadline counts them in.
                deadline = self._timeout * (index // self._processes + 1)
                try:
                    results.extend(await asyncio.wait_for(asyncio.shield(future), deadline))
                except (TimeoutError, BrokenProcessPool) as exc:
                    log.warning("a parsing helper %s; redoing its work item by item", _what(exc))
                    self._restart()
                    for item in items[len(results) :]:
                        results.append(await self._alone(item))
                    return results
        finally:
            # Chunks given up on (their helper was stopped, or the caller stopped waiting as
            # the service stops) fail later, and no one is left to hear it.
            for future in futures:
                _forget(future)
        return results

    async def _here(self, items: Sequence[T]) -> list[R | Failed]:
        results: list[R | Failed] = []
        for item in items:
            results.extend(self._work([item]))
            # Let other tasks (a batch being written) go on between items.
            await asyncio.sleep(0)
        return results

    async def _alone(self, item: T) -> R | Failed:
        if self._pool is None:
            # Fresh helpers (after one was stopped) take a moment to start, up to a second or
            # two on a loaded machine: that is not the item's time.
            await self.start()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._started(), self._work, [item])
        try:
            [result] = await asyncio.wait_for(future, self._timeout)
        except (TimeoutError, BrokenProcessPool) as exc:
            self._restart()
            # Blame the item only if a fresh helper does work: one that cannot start at
            # all (broken installation, out of memory) would otherwise fail every item.
            await self.start()
            return Failed(f"the parsing helper {_what(exc)} on this message")
        return result

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Helpers start from a fresh interpreter, never as forks of this process with its
            # threads and open connections; they end when this process ends, however it ends.
            self._pool = ProcessPoolExecutor(
                self._processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_helper_starts,
                initargs=(os.getpid(), self._initializer, self._initargs),
            )
            _widen_pipes(self._pool)
        return self._pool

    def _restart(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # A hung helper does not stop when asked: end every helper of the pool.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def start(self) -> None:
        """Start the helpers now (they take a moment), rather than at the first mail."""
        if self._processes:
            # A pool starts a helper when no idle one can take the work: keep them all busy
            # for a moment, so all of them start.
            pool = self._started()
            ready: list[Future[Any]] = [
                pool.submit(time.sleep, 0.2) for _ in range(self._processes)
            ]
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(asyncio.wrap_future(future) for future in ready)),
                    self._timeout,
                )
            except (TimeoutError, BrokenProcessPool) as exc:
                self._restart()
                raise HelpersUnavailable(f"parsing helpers {_what(exc)} at start") from exc

    def pids(self) -> list[int]:
        """The process ids of the running helpers (a benchmark reads their CPU time)."""
        pool = self._pool
        return [process.pid for process in getattr(pool, "_processes", {}).values()]

    def close(self) -> None:
        """Stop the helpers: each finishes what it has in hand, or is killed after CLOSE_SECONDS.

        Waiting for the pool to shut down would wait for ever on a helper hung on a mail (the
        caller has stopped waiting for its work, so no timeout ends it), and in the event
        loop, so nothing else would run meanwhile.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return
        helpers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        # A helper's sentinel is ready when it has ended (however it ended).
        running = {helper.sentinel: helper for helper in helpers}
        deadline = time.monotonic() + CLOSE_SECONDS
        while running and (left := deadline - time.monotonic()) > 0:
            for sentinel in multiprocessing.connection.wait(list(running), left):
                del running[sentinel]
        for helper in running.values():
            log.warning(
                "parsing helper %s did not stop within %.0f s; killed", helper.pid, CLOSE_SECONDS
            )
            helper.kill()


def _widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Ask for PIPE_BYTES in the pool's pipes to and from its helpers, where the system can.

    The pipes are the pool's own (its call and result queues); a Python without them, or a
    system that refuses (no F_SETPIPE_SZ, a user over the kernel's pipe quota), keeps the
    default size, which works, only slower.
    """
    if fcntl is None or not hasattr(fcntl, "F_SETPIPE_SZ"):
        return
    for queue in (getattr(pool, "_call_queue", None), getattr(pool, "_result_queue", None)):
        end = getattr(queue, "_reader", None)
        if end is None:
            continue
        with contextlib.suppress(OSError, ValueError):
            fcntl.fcntl(end.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _helper_starts(
    parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    """In a new helper: follow the parent into death, then run the caller's initializer.

    A `serve` killed with SIGKILL cannot stop its helpers; without this they would linger.
    """
    with contextlib.suppress(OSError, AttributeError):
        # Linux: the kernel sends SIGKILL when the parent ends.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the line above
        os._exit(0)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


_PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int) -> None:
    # Elsewhere than Linux: an orphan is adopted by another process; notice and leave.
    while os.getppid() == parent:
        time.sleep(2)
    os._exit(0)


def _forget(future: asyncio.Future[Any]) -> None:
    # Work whose helper was stopped: its result (or its error) is not wanted.
    if not future.cancel() and not future.cancelled():
        future.exception()


def _what(exc: BaseException) -> str:
    return "ran out of time" if isinstance(exc, TimeoutError) else "died"
