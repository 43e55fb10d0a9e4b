"""Parsing helpers end with the process that started them, even when it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.helpers import ROOT

STARTS_HELPERS = """
import asyncio, os, sys
from qa_mailer.offload import Offload
from tests.unit.test_offload import shout

async def main():
    helpers = Offload(shout, 2, timeout=30)
    await helpers.start()
    assert await helpers.map(["a", "b", "c"]) == ["A", "B", "C"]
    print(" ".join(str(pid) for pid in helpers._pool._processes), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for its parent to reap it counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_helpers_do_not_outlive_a_killed_service() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", STARTS_HELPERS],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    try:
        assert parent.stdout is not None
        helpers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(helpers) == 2 and all(alive(pid) for pid in helpers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        # Not read to its end: helpers that outlived their parent would hold it open.
        assert parent.stdout is not None
        parent.stdout.close()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in helpers if alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert survivors == []
