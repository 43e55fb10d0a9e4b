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
from collections import deque
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


@dataclass(eq=False)
class _Chunk(Generic[T, R]):
    """Up to CHUNK items given to the helpers, and the future their results go to."""

    items: Sequence[T]
    result: asyncio.Future[list[R | Failed]]
    work: asyncio.Future[list[R]] | None = None  # at the helpers; None until it is given them


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
        # The chunks given and not yet finished, in order, and the task finishing them.
        self._chunks: deque[_Chunk[T, R]] = deque()
        self._taking: asyncio.Task[None] | None = None
        self._redoing = False

    async def map(self, items: Sequence[T]) -> list[R | Failed]:
        """``work`` over ``items``, in order; an item that broke its helper gets a Failed.

        Several calls may wait at once (the pipeline keeps batches at the helpers while it
        writes): their work is finished in the order it was given, whoever waits for it, so
        a helper that dies or hangs is dealt with once, whatever work it held (see _redo).
        """
        chunks = self._give(items)
        results: list[R | Failed] = []
        try:
            for chunk in chunks:
                results.extend(await chunk)
        finally:
            for chunk in chunks:
                _forget(chunk)
        return results

    def _give(self, items: Sequence[T]) -> list[asyncio.Future[list[R | Failed]]]:
        """Give ``items`` to the helpers, CHUNK at a time, behind the work they have (or once
        a helper that failed has been dealt with): one future per chunk, in order."""
        loop = asyncio.get_running_loop()
        chunks = [
            _Chunk(items[start : start + CHUNK], loop.create_future())
            for start in range(0, len(items), CHUNK)
        ]
        for chunk in chunks:
            if self._processes and not self._redoing:
                chunk.work = self._submit(chunk.items)
        self._chunks.extend(chunks)
        if self._taking is None or self._taking.done():
            self._taking = asyncio.ensure_future(self._take_back())
        return [chunk.result for chunk in chunks]

    def _submit(self, items: Sequence[T]) -> asyncio.Future[list[R]]:
        return asyncio.get_running_loop().run_in_executor(self._started(), self._work, items)

    async def _take_back(self) -> None:
        """Finish the chunks given, in order, as their work comes back from the helpers."""
        try:
            while self._chunks:
                chunk = self._chunks[0]
                if chunk.result.done():  # given up on
                    pass
                elif not self._processes:
                    _settle(chunk.result, await self._here(chunk.items))
                else:
                    if chunk.work is None:
                        chunk.work = self._submit(chunk.items)
                    try:
                        # The chunk before it is done, so this one is being worked on (or
                        # its helper is gone): the deadline is its own.
                        done = await asyncio.wait_for(asyncio.shield(chunk.work), self._timeout)
                    except (TimeoutError, BrokenProcessPool) as exc:
                        await self._redo(exc)
                        continue
                    _settle(chunk.result, done)
                self._chunks.popleft()
                _forget(chunk.work)
        except Exception as exc:  # helpers that cannot start again: no chunk can be done
            for chunk in self._chunks:
                if not chunk.result.done():
                    chunk.result.set_exception(exc)
                _forget(chunk.work)
            self._chunks.clear()

    async def _redo(self, exc: BaseException) -> None:
        """After a helper died or hung: stop the helpers, redo their work item by item.

        Every chunk that was at the helpers is redone, one item at a time in fresh helpers,
        so that the item that breaks a helper again fails alone and no other item is blamed
        for it. Work given meanwhile waits, and goes to the helpers once this is done.
        """
        log.warning("a parsing helper %s; redoing its work item by item", _what(exc))
        self._restart()
        self._redoing = True
        try:
            while self._chunks and (work := self._chunks[0].work) is not None:
                chunk = self._chunks[0]
                chunk.work = None
                if chunk.result.done():
                    pass
                elif work.done() and not work.cancelled() and work.exception() is None:
                    _settle(chunk.result, work.result())  # another helper finished it
                else:
                    _settle(chunk.result, [await self._alone(item) for item in chunk.items])
                _forget(work)
                self._chunks.popleft()
        finally:
            self._redoing = False
        for chunk in self._chunks:
            if chunk.work is None:
                chunk.work = self._submit(chunk.items)

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
        if self._taking is not None:
            self._taking.cancel()
            self._taking = None
        for chunk in self._chunks:
            _forget(chunk.result)
            _forget(chunk.work)
        self._chunks.clear()
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


def _forget(future: asyncio.Future[Any] | None) -> None:
    # Work whose helper was stopped: its result (or its error) is not wanted.
    if future is not None and not future.cancel() and not future.cancelled():
        future.exception()


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # not given up on
        future.set_result(result)


def _what(exc: BaseException) -> str:
    return "ran out of time" if isinstance(exc, TimeoutError) else "died"
