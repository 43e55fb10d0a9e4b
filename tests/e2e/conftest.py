"""End-to-end settings: mail in from the test's Dovecot user, mail out to the aiosmtpd sink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.app import Service
from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from tests.helpers import write_config
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.smtp_sink import SmtpSink

MakeConfig = Callable[..., Config]


@pytest.fixture
def e2e_config(
    tmp_path: Path,
    database_url: str,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> MakeConfig:
    """A config.toml that reads the test's IMAP mailbox and sends through the sink."""
    monkeypatch.setenv("QA_E2E_IMAP_PASSWORD", imap_user.password)

    def make(**sections: Any) -> Config:
        """The settings above, each table updated with the one given here."""
        settings: dict[str, Any] = {
            "listener": {"enabled": False},
            "imap": {
                "enabled": True,
                "host": "127.0.0.1",
                "port": dovecot.port,
                "security": "none",
                "username": imap_user.name,
                "password_env": "QA_E2E_IMAP_PASSWORD",
            },
            "outgoing": {"transport": "smtp"},
            "smtp": {"host": "127.0.0.1", "port": smtp_sink.port, "security": "none"},
            "digest": {"automatic": False},
        }
        for name, value in sections.items():
            settings[name] = (
                {**settings[name], **value}
                if isinstance(value, dict) and isinstance(settings.get(name), dict)
                else value
            )
        return write_config(tmp_path, database_url, **settings)

    return make


@asynccontextmanager
async def running(config: Config, engine: AsyncEngine) -> AsyncIterator[Service]:
    """The whole service, started and connected to IMAP; stopped on exit."""
    service = Service(config, engine, clock=SystemClock())
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(service.ready.wait(), 10)
    assert service.imap is not None
    await asyncio.wait_for(service.imap.connected.wait(), 10)
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
