"""Commands run on uvloop's event loop where it is installed, as it is with qa-mailer."""

from __future__ import annotations

import asyncio
import signal

import pytest

from qa_mailer import eventloop


def test_a_command_runs_on_uvloop_and_can_handle_signals() -> None:
    async def main() -> tuple[str, bool]:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        # As `serve` stops: a signal handler sets an event.
        loop.add_signal_handler(signal.SIGUSR2, stop.set)
        try:
            signal.raise_signal(signal.SIGUSR2)
            await asyncio.wait_for(stop.wait(), 5)
            # And work handed to a thread comes back, as aiosqlite's does.
            done = await asyncio.to_thread(lambda: True)
        finally:
            loop.remove_signal_handler(signal.SIGUSR2)
        return type(loop).__module__, done

    module, done = eventloop.run(main())
    assert module.startswith("uvloop")
    assert done


def test_without_uvloop_a_command_runs_on_asyncios_own_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(eventloop, "loop_factory", lambda: None)

    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert eventloop.run(main()).startswith("asyncio")
