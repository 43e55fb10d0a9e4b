"""Real `qa-mailer serve` processes on one database, started, killed and stopped at will.

Used by the tests that prove several processes never do a unit of work twice, and by the
benchmark that measures throughput with 1, 2 and 4 processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from asyncio.subprocess import Process
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Fleet:
    """``serve`` processes started from one config file; each writes its log to ``logs``."""

    config: Path
    logs: Path
    roles: str | None = None
    running: list[Process] = field(default_factory=list)
    exited: list[tuple[int, int]] = field(default_factory=list)  # (pid, return code)
    started: int = 0
    log_of: dict[int, Path] = field(default_factory=dict)  # pid -> its log
    killed: set[int] = field(default_factory=set)  # pids SIGKILLed on purpose

    async def start(self, count: int) -> None:
        for _ in range(count):
            await self.spawn()

    async def spawn(self) -> Process:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.started += 1
        # A plain file the child writes to directly; opening it is instant.
        path = self.logs / f"serve-{self.started}.log"
        log = open(path, "wb")  # noqa: SIM115, ASYNC230
        args = [sys.executable, "-m", "qa_mailer", "--config", str(self.config), "serve"]
        if self.roles:
            args += ["--roles", self.roles]
        process = await asyncio.create_subprocess_exec(
            *args,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        log.close()
        self.log_of[process.pid] = path
        self.running.append(process)
        return process

    async def kill(self, process: Process) -> None:
        """SIGKILL: no clean-up, no released claims, as when a machine loses power."""
        self.running.remove(process)
        self.killed.add(process.pid)
        process.send_signal(signal.SIGKILL)
        self.exited.append((process.pid, await process.wait()))

    async def stop(self, timeout: float = 60.0) -> list[int]:
        """SIGTERM every running process and wait; return their exit codes."""
        processes, self.running = self.running, []
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for process in processes:
            try:
                codes.append(await asyncio.wait_for(process.wait(), timeout))
            except TimeoutError:
                process.kill()
                codes.append(await process.wait())
            self.exited.append((process.pid, codes[-1]))
        return codes

    def log_text(self) -> str:
        """Every process's log: a short tail of those that ended as they should (exit 0, or
        SIGKILLed on purpose), then a long one of the others, last, where a runner that
        shortens its output keeps the end."""
        codes = dict(self.exited)
        expected = {pid for pid, code in codes.items() if code == 0 or pid in self.killed}
        ordered = sorted(self.log_of.items(), key=lambda item: (item[0] not in expected, item[1]))
        parts = []
        for pid, path in ordered:
            keep = 1500 if pid in expected else 12000
            text = path.read_text(errors="replace")[-keep:]
            parts.append(f"== {path.name} (pid {pid}, exit {codes.get(pid, 'none yet')})\n{text}")
        return "\n".join(parts)
