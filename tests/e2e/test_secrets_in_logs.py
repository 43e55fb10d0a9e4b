"""No reply token reaches the log: the whole service at DEBUG, every token it issued grepped for."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import aiosmtplib
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.config import Config
from qa_mailer.db import Dispatch
from qa_mailer.db.engine import session_factory
from qa_mailer.logs import LIBRARIES, quiet_libraries
from tests.e2e.conftest import MakeConfig, running
from tests.helpers import EXPERT, make_mail, wait_until
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.imap_client import append
from tests.servers.ports import free_port
from tests.servers.smtp_sink import SmtpSink

HR = "ana@drvo.example.hr"
BG = "petar@mebeli.example.bg"


@pytest.fixture
def service_logging(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything the service logs at DEBUG, with the libraries set as `qa-mailer serve` sets them."""
    levels = {name: logging.getLogger(name).level for name in LIBRARIES}
    caplog.set_level(logging.DEBUG)
    quiet_libraries()
    yield caplog
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.asyncio
async def test_no_token_the_service_issued_appears_in_its_log(
    e2e_config: MakeConfig,
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    service_logging: pytest.LogCaptureFixture,
) -> None:
    # Mail comes in both ways: over IMAP, and through the service's own SMTP listener (whose
    # library logs every RCPT address, plus tag and all, unless it is kept quiet).
    config: Config = e2e_config(listener={"enabled": True, "port": free_port()})
    questions = [
        make_mail(sender=f"Ana <{HR}>", subject="[VC1] Who leads?", body="Who should lead it?"),
        make_mail(sender=f"Petar <{BG}>", subject="[VC1] Trust?", body="How is trust built?"),
    ]
    async with running(config, engine):
        await append(dovecot, imap_user, *questions)
        await wait_until(
            lambda: _at(smtp_sink, EXPERT, 2), what="two copies at the expert", timeout=30
        )
        # The copies go out over several connections at once and may arrive in either order:
        # Ana's (the first question) is put first.
        copies = sorted(smtp_sink.to(EXPERT), key=lambda r: "Who should lead it?" not in r.text())
        replies = [
            # The expert answers the first through the plus address (over SMTP); a stranger
            # tries the second; the expert answers the second from a client that dropped the
            # plus address.
            make_mail(
                sender=EXPERT,
                to=str(copies[0].message["Reply-To"]),
                subject=f"Re: {copies[0].message['Subject']}",
                body="The firms themselves.",
                in_reply_to=str(copies[0].message["Message-ID"]),
            ),
            make_mail(
                sender="mallory@evil.example.org",
                to=str(copies[1].message["Reply-To"]),
                subject="Re: x",
                body="Pay me.",
                in_reply_to=str(copies[1].message["Message-ID"]),
            ),
            make_mail(
                sender=EXPERT,
                subject=f"Re: {copies[1].message['Subject']}",
                body="Small joint projects.",
                in_reply_to=str(copies[1].message["Message-ID"]),
                references=str(copies[1].message["Message-ID"]),
            ),
        ]
        await aiosmtplib.send(
            replies[0],
            sender=EXPERT,
            recipients=[str(copies[0].message["Reply-To"])],
            hostname="127.0.0.1",
            port=config.listener.port,
            timeout=10,
        )
        await append(dovecot, imap_user, *replies[1:])
        await wait_until(lambda: _at(smtp_sink, HR, 2), what="the answer to Ana", timeout=30)
        await wait_until(
            lambda: _at(smtp_sink, EXPERT, 4), what="two receipts at the expert", timeout=30
        )

    async with session_factory(engine)() as session:
        tokens = list(await session.scalars(select(Dispatch.token)))
    assert len(tokens) == 2
    reply_to_tokens = {
        m.group(1)
        for r in smtp_sink.received
        if (m := re.search(r"\+r([0-9a-z]+)@", str(r.message.get("Reply-To", ""))))
    }
    assert reply_to_tokens == set(tokens)
    logged = "\n".join(
        [service_logging.text]
        + [f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in service_logging.records]
    )
    assert "sent route" in logged and "stored message" in logged  # the log was captured
    for token in tokens:
        assert token not in logged


async def _at(sink: SmtpSink, address: str, n: int) -> bool:
    return len(sink.to(address)) >= n
