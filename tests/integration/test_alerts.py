"""The organisers are told by mail, once, when `serve` stops on a refused IMAP login.

Through the real servers and processes: Dovecot refuses the password, each `qa-mailer serve`
stops after its few tries (exit 78), and the alert reaches the relay (an aiosmtpd sink). Two
processes on one database and a restart after them still make one mail: the outbox key is
unique per cause and day, and no alert is queued while one of the same cause is less than a
day old.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from qa_mailer.db import OutboxMail
from qa_mailer.db.engine import create_engine, session_factory
from qa_mailer.digest.alerts import Alert, queue_alert
from qa_mailer.templates import Templates
from tests.helpers import ORGANISER, write_config
from tests.integration.test_check import failures_of, imap_settings
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.smtp_sink import SmtpSink


async def serve(config: Config, password: str) -> tuple[int, str]:
    """`qa-mailer serve` in its own process until it stops by itself: its status and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qa_mailer",
        "--config",
        str(config.path),
        "serve",
        env={**os.environ, "QA_TEST_IMAP_PASSWORD": password},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, output.decode()


def alerts(sink: SmtpSink) -> list[str]:
    return [r.message["Subject"] for r in sink.received if "has stopped" in r.message["Subject"]]


@pytest.mark.dovecot
@pytest.mark.asyncio
async def test_a_refused_imap_login_is_mailed_to_the_organisers_once(
    tmp_path: Path,
    migrated_url: str,
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
) -> None:
    config = write_config(
        tmp_path,
        migrated_url,
        imap=imap_settings(dovecot, imap_user),
        listener={"enabled": False},
        outgoing={"transport": "smtp"},
        smtp={"host": "127.0.0.1", "port": smtp_sink.port, "security": "none"},
    )
    # Two processes on one database: the second polls once the first gave the mailbox up.
    stopped = await asyncio.gather(
        serve(config, "not-the-password"), serve(config, "not-the-password")
    )
    for status, output in stopped:
        assert status == 78, output
        assert "login refused" in output and "check $QA_TEST_IMAP_PASSWORD" in output
    # Restarted (by hand, or by a supervisor that ignores exit 78): no second mail today.
    status, output = await serve(config, "not-the-password")
    assert status == 78, output
    # Three processes, each giving up after its few tries: the account is not hammered.
    assert failures_of(dovecot, imap_user) <= 9

    assert len(alerts(smtp_sink)) == 1, [r.message["Subject"] for r in smtp_sink.received]
    (mail,) = [r for r in smtp_sink.received if "has stopped" in r.message["Subject"]]
    assert mail.rcpt_tos == [ORGANISER]
    text = mail.text()
    assert f"IMAP {imap_user.name}@127.0.0.1:{dovecot.port}: login refused" in text
    assert "check $QA_TEST_IMAP_PASSWORD" in text
    assert "qa-mailer auth login" not in text
    async with session_factory(engine)() as db:
        keys = list(await db.scalars(select(OutboxMail.key).where(OutboxMail.state == "sent")))
    assert [k for k in keys if "alert" in k] == [
        f"notice:alert-imap-login@{SystemClock().now():%Y%m%d}"
    ]


@pytest.mark.asyncio
async def test_processes_queuing_the_same_alert_at_once_queue_it_once(
    tmp_path: Path, migrated_url: str
) -> None:
    config = write_config(tmp_path, migrated_url)
    alert = Alert("imap-login", "the mailbox", "login refused: check $QA_MAILER_IMAP_PASSWORD")
    engines = [create_engine(migrated_url) for _ in range(4)]
    try:
        queued = await asyncio.gather(
            *(
                queue_alert(
                    session_factory(engine), config, Templates.of(config), SystemClock(), alert
                )
                for engine in engines
            )
        )
        async with session_factory(engines[0])() as db:
            rows = list(await db.scalars(select(OutboxMail.key)))
    finally:
        for engine in engines:
            await engine.dispose()
    assert len([n for n in queued if n is not None]) == 1, queued
    assert len([k for k in rows if k.startswith("notice:alert-imap-login@")]) == 1
    # Another cause is another alert.
    other = Alert("oauth2-grant", "the mailbox", "the provider refused the OAuth2 grant")
    engine = create_engine(migrated_url)
    try:
        sessions = session_factory(engine)
        assert await queue_alert(sessions, config, Templates.of(config), SystemClock(), other)
    finally:
        await engine.dispose()
