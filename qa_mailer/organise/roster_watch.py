"""A running service reads the roster again when its file changes (`roster reload` while serving)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.backoff import every
from qa_mailer.classify.roster import Roster, load_roster
from qa_mailer.config import Config, ConfigError
from qa_mailer.organise.questions import apply_roster

log = logging.getLogger("qa_mailer.roster")

# How often the roster file is looked at (one stat call).
CHECK_SECONDS = 5.0


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


class RosterWatcher:
    """Replaces the service's roster when the file changes, and sorts unassigned questions.

    A roster that cannot be read (a half-saved file, a bad line) is logged and the one in
    use is kept; the next change is tried again.
    """

    def __init__(
        self,
        config: Config,
        engine: AsyncEngine,
        roster: Roster,
        check_seconds: float = CHECK_SECONDS,
    ):
        self._config = config
        self._engine = engine
        self._roster = roster
        self._check_seconds = check_seconds
        self._stamp = _stamp(config.roster) if config.roster else None

    async def run(self, stop: asyncio.Event) -> None:
        if self._config.roster is None:
            return
        await every(stop, self._check_seconds, self.check, log, "the roster check")

    async def check(self) -> bool:
        """Reload if the file changed since last time; True if a new roster was taken."""
        path = self._config.roster
        if path is None:
            return False
        stamp = _stamp(path)
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            fresh = load_roster(path, self._config.countries)
        except ConfigError as exc:
            log.warning("roster not reloaded, the one in use is kept: %s", exc)
            return False
        self._roster.replace(fresh)
        sorted_ = await apply_roster(self._engine, self._config, fresh)
        log.info(
            "roster reloaded: %d participant(s); %d unassigned participant(s) sorted (%s)",
            len(fresh),
            len(sorted_),
            ", ".join(ref for item in sorted_ for ref in item.refs) or "none",
        )
        return True
