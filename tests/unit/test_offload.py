"""Parsing helpers: work goes out and comes back in order; a helper that dies or hangs fails
only the item it was working on."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from qa_mailer.offload import CLOSE_SECONDS, PIPE_BYTES, Failed, HelpersUnavailable, Offload
from tests.helpers import wait_until


def shout(items: Sequence[str]) -> list[str]:
    results = []
    for item in items:
        if item == "crash":
            os._exit(3)  # as a segfault in a C parser would end it
        if item.startswith("hang"):
            # "hang:PATH" says it hangs, by creating PATH, for tests that act during the hang.
            if said := item.partition(":")[2]:
                Path(said).touch()
            time.sleep(60)
        results.append(item.upper())
    return results


@pytest.mark.asyncio
@pytest.mark.parametrize("processes", [0, 2])
async def test_results_come_back_in_order(processes: int) -> None:
    helpers = Offload(shout, processes, timeout=20)
    try:
        items = [f"mail{n}" for n in range(120)]
        assert await helpers.map(items) == [item.upper() for item in items]
    finally:
        helpers.close()


@pytest.mark.asyncio
async def test_the_pipes_to_and_from_the_helpers_hold_a_chunk_of_results() -> None:
    # A chunk's parsed mails are a few hundred KB: in the default 64 KB pipe the helper would
    # wait for this process to read each piece before it could go on with the next chunk.
    helpers = Offload(shout, 1, timeout=20)
    try:
        await helpers.start()
        pool = helpers._pool
        assert pool is not None
        queues: list[Any] = [pool._call_queue, pool._result_queue]  # type: ignore[attr-defined]
        for queue in queues:
            assert fcntl.fcntl(queue._reader.fileno(), fcntl.F_GETPIPE_SZ) >= PIPE_BYTES
        assert PIPE_BYTES >= 1 << 20
    finally:
        helpers.close()


@pytest.mark.asyncio
async def test_a_mail_that_kills_its_helper_fails_alone() -> None:
    helpers = Offload(shout, 1, timeout=20)
    try:
        items = [f"mail{n}" for n in range(60)]
        items[37] = "crash"
        results = await helpers.map(items)
        assert [r for r in results if isinstance(r, Failed)] == [
            Failed("the parsing helper died on this message")
        ]
        assert results[37] == Failed("the parsing helper died on this message")
        assert all(
            r == item.upper() for r, item in zip(results, items, strict=True) if item != "crash"
        )
        # The helpers were started again: later work goes through.
        assert await helpers.map(["after"]) == ["AFTER"]
    finally:
        helpers.close()


@pytest.mark.asyncio
async def test_a_mail_that_hangs_its_helper_fails_alone_after_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The timeout is short against the hang, but not shorter than a helper's start on a
    # loaded machine, which it covers too (1.0 s failed "first" beside two CPU hogs; each
    # restart after the hang is a new interpreter).
    helpers = Offload(shout, 1, timeout=6.0)
    try:
        await helpers.start()  # as the pipeline does
        started = time.monotonic()
        results = await helpers.map(["first", "hang", "third"])
        assert results == [
            "FIRST",
            Failed("the parsing helper ran out of time on this message"),
            "THIRD",
        ]
        assert time.monotonic() - started < 40  # not the 60 s of the hang
        # The stopped helper's chunk fails too; it was redone item by item, so that failure
        # is no one's news.
        assert await unretrieved_errors(caplog) == []
    finally:
        helpers.close()


async def unretrieved_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What asyncio reported of failures no one retrieved, once the helpers' ends are seen."""
    await asyncio.sleep(1)  # the pool's thread sees a stopped helper and fails its work
    gc.collect()
    await asyncio.sleep(0)
    return [r.getMessage() for r in caplog.records if r.name == "asyncio"]


def refuses_to_start() -> None:
    raise RuntimeError("this helper cannot work (say, a half-upgraded installation)")


@pytest.mark.asyncio
async def test_helpers_that_cannot_start_are_reported_not_blamed_on_the_items() -> None:
    helpers = Offload(shout, 1, timeout=20, initializer=refuses_to_start)
    try:
        with pytest.raises(HelpersUnavailable):
            await helpers.start()
        with pytest.raises(HelpersUnavailable):
            await helpers.map(["a", "b"])
    finally:
        helpers.close()


async def in_the_hang(said: Path) -> None:
    """Wait until the helper says it is in the hang (see ``shout``)."""
    await wait_until(lambda: asyncio.to_thread(said.exists), timeout=20, what="the helper's hang")


def ended(pid: int) -> bool:
    """The process is gone, or a zombie waiting to be reaped: it runs no more."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.asyncio
async def test_closing_while_a_helper_hangs_ends_it_instead_of_waiting_for_it(
    tmp_path: Path,
) -> None:
    # The pipeline stops with a batch at the helpers: it cancels its wait for the batch and
    # closes the helpers. A helper hung on a mail would never finish that batch, and closing
    # must not wait for it (it ran in the event loop, so nothing else ran meanwhile either).
    helpers = Offload(shout, 1, timeout=120)
    await helpers.start()
    [pid] = helpers.pids()
    hanging = tmp_path / "hanging"
    waiting = asyncio.ensure_future(helpers.map([f"hang:{hanging}"]))
    await in_the_hang(hanging)
    waiting.cancel()
    started = time.monotonic()
    helpers.close()
    assert time.monotonic() - started < CLOSE_SECONDS + 2
    deadline = time.monotonic() + 10
    while not ended(pid):
        assert time.monotonic() < deadline, f"helper {pid} still runs"
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_closing_lets_helpers_finish_what_they_have_in_hand() -> None:
    helpers = Offload(shout, 1, timeout=20)
    await helpers.start()
    [pid] = helpers.pids()
    results = await helpers.map([f"mail{n}" for n in range(10)])
    started = time.monotonic()
    helpers.close()
    assert time.monotonic() - started < 2
    assert ended(pid)
    assert results[9] == "MAIL9"


@pytest.mark.asyncio
async def test_work_abandoned_at_close_leaves_no_unretrieved_errors(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # A stop cancels the wait for a batch at the helpers and closes them: the batch's work
    # then fails (its helper is gone), and no one wants that failure. asyncio reports a
    # failure no one retrieved as an error in the log, at a stop that went as it should.
    helpers = Offload(shout, 1, timeout=120)
    await helpers.start()
    [pid] = helpers.pids()
    hanging = tmp_path / "hanging"
    waiting = asyncio.ensure_future(helpers.map([f"hang:{hanging}", "mail1", "mail2"]))
    await in_the_hang(hanging)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    helpers.close()
    deadline = time.monotonic() + 10
    while not ended(pid):
        assert time.monotonic() < deadline, f"helper {pid} still runs"
        await asyncio.sleep(0.05)
    assert await unretrieved_errors(caplog) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("bad", ["crash", "hang"])
async def test_with_several_batches_out_a_bad_mail_fails_alone(bad: str) -> None:
    # The pipeline keeps several batches at the helpers. A helper that dies or hangs in one
    # stops the work of all of them: every other mail is done again, and only the bad one
    # fails (not a mail that happened to be redone while another batch restarted the helpers).
    helpers = Offload(shout, 1, timeout=6.0)
    try:
        await helpers.start()
        batches = [[f"b{b}m{n}" for n in range(60)] for b in range(3)]
        batches[0][30] = bad
        results = await asyncio.gather(*(helpers.map(batch) for batch in batches))
        failed = [
            (b, n)
            for b, batch in enumerate(results)
            for n, result in enumerate(batch)
            if isinstance(result, Failed)
        ]
        assert failed == [(0, 30)]
        for batch, done in zip(batches, results, strict=True):
            assert [r for r, item in zip(done, batch, strict=True) if item != bad] == [
                item.upper() for item in batch if item != bad
            ]
    finally:
        helpers.close()
