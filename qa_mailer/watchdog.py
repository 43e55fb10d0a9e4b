"""A `serve` asked to stop does stop, and one that hangs says where.

A service that hangs on its way out is worse than one that dies: the process manager waits,
then kills it without a word (systemd after ``TimeoutStopSec``, 30 s in deploy/), and nobody
learns which step never ended. So:

- ``SIGUSR1`` logs every asyncio task's await chain and every other thread's stack, read by
  the event loop: ``kill -USR1 <pid>`` on a process that seems stuck. (Not faulthandler's
  dump from the signal handler itself: it walks the other threads' frames while they run,
  and a serve dumped while a thread was importing died mid-dump.)
- Once a stop is asked for, a deadline runs: a little before it the same is logged, and at
  the deadline every thread's stack is written to stderr and the process ends with exit
  status 1 (``faulthandler.dump_traceback_later``: its own thread, so it fires even if the
  event loop is blocked), before the process manager's own kill. Nothing is lost by ending
  there: the work a process held is claimed under a lease, and its claims run out as a
  killed process's would.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from types import FrameType

log = logging.getLogger("qa_mailer")

# How long a stop may take beyond the stages' grace period: the organisers' alert, the last
# writes, closing connections. Grace (10 s) + this stays under systemd's TimeoutStopSec (30 s).
STOP_MARGIN_SECONDS = 15.0
# How long before the deadline the tasks still running are logged.
TASKS_LOGGED_BEFORE = 3.0


def process_stderr() -> bool:
    """Whether stderr is a real file descriptor, as in a `serve` process of its own.

    Not so when the command runs inside another program (a test's CliRunner): faulthandler has
    nowhere to write, and its timer must not end that other program.
    """
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def dump_stacks_on_request(loop: asyncio.AbstractEventLoop) -> None:
    """On SIGUSR1: log the asyncio tasks' await chains and the other threads' stacks."""
    loop.add_signal_handler(signal.SIGUSR1, log_stacks, "stacks asked for (SIGUSR1)")


def log_stacks(reason: str) -> None:
    """Log every asyncio task of the running loop that is not done, with its await chain,
    and the stack of every thread but this one (the loop's, which is running this)."""
    tasks = [task for task in asyncio.all_tasks() if not task.done()]
    lines = [f"{reason}: {len(tasks)} task(s) running"]
    for task in sorted(tasks, key=lambda t: t.get_name()):
        lines.append(f"task {task.get_name()}, waiting in:")
        for frame in _awaiting(task.get_coro()):
            summary = traceback.extract_stack(frame, limit=1)
            lines.extend("  " + line.rstrip("\n") for line in summary.format())
    # Read with the interpreter lock held, between two callbacks: a consistent snapshot.
    frames = sys._current_frames()
    for thread in threading.enumerate():
        stack = frames.get(thread.ident or -1)
        if thread is threading.current_thread() or stack is None:
            continue
        lines.append(f"thread {thread.name}:")
        lines.extend(line.rstrip("\n") for line in traceback.format_stack(stack))
    log.warning("\n".join(lines))


def _awaiting(coroutine: object) -> Iterator[FrameType]:
    # Task.get_stack() gives a suspended coroutine's own frame only; the await chain below it
    # (cr_await, gi_yieldfrom) says what it waits for.
    while coroutine is not None:
        frame = getattr(coroutine, "cr_frame", None) or getattr(coroutine, "gi_frame", None)
        if frame is not None:
            yield frame
        coroutine = getattr(coroutine, "cr_await", None) or getattr(coroutine, "gi_yieldfrom", None)


class StopDeadline:
    """Once started: the tasks still running are logged a little before ``seconds``, and at
    ``seconds`` every thread's stack is written and the process ends with exit status 1."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._started = False

    def start(self) -> None:
        """Start the countdown (again: no effect, so a second SIGTERM does not extend it)."""
        if self._started or not process_stderr():
            return
        self._started = True
        # A thread of faulthandler's own: it fires even if the event loop is blocked, and it
        # covers the last steps after the loop (closing the database, the interpreter's exit).
        faulthandler.dump_traceback_later(self.seconds, exit=True, file=sys.stderr)
        early = max(self.seconds - TASKS_LOGGED_BEFORE, 0.0)
        asyncio.get_running_loop().call_later(
            early, log_stacks, f"still stopping after {early:.0f} s"
        )
