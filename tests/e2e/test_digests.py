"""The automatic digests in the running service: mail waiting at start-up is in the first one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.app import Service
from tests.e2e.conftest import MakeConfig
from tests.helpers import ORGANISER, FakeClock, make_mail, wait_until
from tests.integration.test_pipeline import delivered
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.imap_client import append
from tests.servers.smtp_sink import Received, SmtpSink


@pytest.mark.asyncio
async def test_serve_started_after_an_outage_digests_the_mail_that_waited(
    e2e_config: MakeConfig,
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
) -> None:
    # VC1 ended on 3 December; two questions reached the mailbox in the night to 5 December
    # while the service was down. It starts at 12:00 in Sofia, after the digest hour (08:00).
    config = e2e_config(digest={"automatic": True})
    night = "by mx.clusters.example.org; Sat, 05 Dec 2026 03:00:00 +0000"
    await append(
        dovecot,
        imap_user,
        delivered(make_mail(sender="ana@drvo.example.hr", subject="[VC1] Who leads?"), night),
        delivered(make_mail(sender="petar@mebeli.example.bg", subject="[VC1] Trust?"), night),
    )
    service = Service(config, engine, clock=FakeClock(datetime(2026, 12, 5, 10, 0, tzinfo=UTC)))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        # VC1's digest, and the programme report (its first, as there is news).
        subjects = await wait_until(
            lambda: _subjects(smtp_sink, ORGANISER, 2), timeout=30, what="the digests"
        )
        assert subjects == [
            "Clusters Q&A: programme report, 2 questions, 0 answered, 2 pending",
            "[VC1] Q&A digest: 2 questions, 0 answered, 2 pending",
        ]
        # Nothing more today, however often the scheduler looks.
        assert await service.digests.send_due() == []
        assert await service.digests.send_programme_due() is False
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert len(smtp_sink.to(ORGANISER)) == 2


async def _subjects(sink: SmtpSink, address: str, count: int) -> list[str] | None:
    found: list[Received] = sink.to(address)
    return sorted(str(r.message["Subject"]) for r in found) if len(found) >= count else None
