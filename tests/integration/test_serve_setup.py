"""`serve` on a wrong setting: it names the cause and stops instead of retrying forever."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.app import YOUNG_COLLECTION, Service
from qa_mailer.cli import main
from qa_mailer.clock import SystemClock
from qa_mailer.diagnose import SetupError
from qa_mailer.send.transport import DeliveryError, SmtpTransport
from tests.helpers import QA, local_relay, make_mail, wait_until, write_config
from tests.integration.test_check import failures_of, imap_settings
from tests.integration.test_imap_poller import polling
from tests.servers.dovecot import DovecotServer, ImapUser, imap_config_for
from tests.servers.ports import free_port
from tests.servers.smtp_sink import SmtpSink


def test_serve_stops_after_a_few_refused_logins_with_the_cause(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", "not-the-password")
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    config = write_config(
        tmp_path, url, imap=imap_settings(dovecot, imap_user), listener={"port": free_port()}
    )
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config.path), "db", "upgrade"]).exit_code == 0
    result = runner.invoke(main, ["--config", str(config.path), "serve"])
    # 78 (EX_CONFIG): the systemd unit does not restart on it.
    assert result.exit_code == 78, result.output
    assert "login refused" in result.output and "check $QA_TEST_IMAP_PASSWORD" in result.output
    assert "stopped after 3 tries" in result.output
    assert failures_of(dovecot, imap_user) <= 3


@pytest.mark.asyncio
async def test_the_poller_says_once_that_it_is_connected(
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="qa_mailer.ingest.imap")
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", imap_user.password)
    async with polling(engine, imap_config_for(dovecot, imap_user)) as poller:
        await wait_until(lambda: _set(poller.connected.is_set()), what="connected")
    lines = [r.getMessage() for r in caplog.records if r.name == "qa_mailer.ingest.imap"]
    connected = [line for line in lines if ": connected;" in line]
    assert len(connected) == 1, lines
    assert imap_user.name in connected[0] and "INBOX holds 0 messages" in connected[0]
    assert "IDLE" in connected[0]


async def _set(value: bool) -> bool:
    return value


@pytest.mark.asyncio
async def test_a_relay_without_starttls_is_not_called_unreachable(
    smtp_sink: SmtpSink,
) -> None:
    transport = SmtpTransport(local_relay(smtp_sink.port, security="starttls", timeout_seconds=5))
    raw = make_mail(sender=QA, to="ana@drvo.example.hr", subject="x", body="y")
    with pytest.raises(DeliveryError) as failed:
        await transport.send(QA, ["ana@drvo.example.hr"], raw, "mail-1")
    assert "unreachable" not in str(failed.value)
    assert f"127.0.0.1:{smtp_sink.port} does not offer STARTTLS" in str(failed.value)
    assert 'smtp.security = "tls"' in str(failed.value)


@pytest.mark.asyncio
async def test_serve_stops_at_start_on_a_relay_mistake(
    tmp_path: Path, migrated_url: str, engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    config = write_config(
        tmp_path,
        migrated_url,
        listener={"port": free_port()},
        outgoing={"transport": "smtp"},
        smtp={"host": "127.0.0.1", "port": smtp_sink.port, "security": "starttls"},
    )
    service = Service(config, engine, clock=SystemClock())
    with pytest.raises(SetupError) as stopped:
        await service.run(asyncio.Event())
    assert f"SMTP relay 127.0.0.1:{smtp_sink.port}" in str(stopped.value)
    assert "does not offer STARTTLS" in str(stopped.value)


@pytest.mark.asyncio
async def test_a_running_service_tunes_the_garbage_collector_and_gives_it_back(
    tmp_path: Path, engine: AsyncEngine, migrated_url: str
) -> None:
    # While it runs, what start-up loaded is frozen out of the collector's view and the young
    # generation is collected less often; once it stops, the process's settings are as before
    # (a test process runs many services, and their leftovers must stay collectable).
    before = gc.get_threshold()
    service = Service(write_config(tmp_path, migrated_url), engine, clock=SystemClock())
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(service.ready.wait(), 10)
    running = gc.get_threshold(), gc.get_freeze_count()
    stop.set()
    await asyncio.wait_for(task, 30)
    assert running[0] == (YOUNG_COLLECTION, *before[1:]) and running[1] > 10_000
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
