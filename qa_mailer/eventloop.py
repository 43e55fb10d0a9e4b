"""The event loop every command runs in: uvloop's where it is installed, asyncio's otherwise.

uvloop is asyncio's event loop written over libuv: the loop's own work (running callbacks,
futures handed over from other threads, sockets) is done in C. The processing stage hands
every database statement to SQLite's thread and takes its answer back (aiosqlite), and takes
each chunk of parsed mail back from a thread of the parsing helpers' pool; with uvloop the
service's CPU time per question fell by about 6% on SQLite (bench/bench_process.py, eight
runs each way in turns, README "Performance"). Nothing in qa-mailer depends on which loop
runs: uvloop implements asyncio's interface, signal handlers and TLS included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), on uvloop's event loop when uvloop can be imported."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's new_event_loop, or None (asyncio's own loop) where uvloop is not installed
    (it does not exist for Windows)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
