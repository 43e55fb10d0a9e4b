"""The organisers are told by mail, once, when `serve` stops on a refused IMAP login.

Through the real servers: Dovecot refuses the password, the service stops after its few tries,
and the alert reaches the relay (an aiosmtpd sink). Two processes that fail together, and a
restart after them, still make one mail: the outbox key is unique per cause and day, and no
alert is queued while one of the same cause is less than a day old.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.app import Service
from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from qa_mailer.db import OutboxMail
from qa_mailer.db.engine import session_factory
from qa_mailer.diagnose import SetupError
from tests.helpers import ORGANISER, write_config
from tests.integration.test_check import imap_settings
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.smtp_sink import SmtpSink


async def serve_until_it_stops(config: Config, engine: AsyncEngine) -> SetupError:
    """Run one service until it stops by itself; the mistake it stopped on."""
    service = Service(config, engine, clock=SystemClock())
    with pytest.raises(SetupError) as stopped:
        await asyncio.wait_for(service.run(asyncio.Event(), grace_seconds=5), 90)
    return stopped.value


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
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", "not-the-password")
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
        serve_until_it_stops(config, engine), serve_until_it_stops(config, engine)
    )
    assert all("login refused" in str(s) for s in stopped)
    # Restarted (by hand, or by a supervisor that ignores exit 78): no second mail today.
    await serve_until_it_stops(config, engine)

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
