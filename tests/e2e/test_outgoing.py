"""Outgoing mail through the whole service: questions in over its SMTP listener, mail out to an
aiosmtpd relay, the database checked. One bad recipient fails its own mail, never the outbox;
an address is one recipient whatever it holds; a refusal is recorded for its recipient.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.app import Service
from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from qa_mailer.db import InboundMessage, MessageState, OutboxMail, OutboxState
from qa_mailer.db.engine import session_factory
from tests.helpers import EXPERT, QA, wait_until, write_config
from tests.servers.ports import free_port
from tests.servers.smtp_sink import SmtpSink

RU = "пётр@firm.example.ru"
QUOTED = '"p6,x"@firm.example.bg'
HR = "ana@drvo.example.hr"


def question(sender: str, subject: str, body: str, message_id: str) -> bytes:
    # Raw UTF-8 in the head (RFC 6532), as mail from Russia can arrive: no encoded words.
    return (
        f"From: Пётр <{sender}>\r\nTo: {QA}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    ).encode()


@pytest_asyncio.fixture
async def smtputf8_sink() -> AsyncIterator[SmtpSink]:
    """A relay that offers SMTPUTF8 (RFC 6531)."""
    sink = SmtpSink()
    loop = asyncio.get_running_loop()
    sink.server = await loop.create_server(
        lambda: SMTP(sink, loop=loop, enable_SMTPUTF8=True), "127.0.0.1", 0
    )
    sink.port = int(sink.server.sockets[0].getsockname()[1])
    yield sink
    sink.server.close()
    await sink.server.wait_closed()


def settings(tmp_path: Path, database_url: str, relay: SmtpSink, **outgoing: Any) -> Config:
    """The listener on, no IMAP, mail out through ``relay``, retries quick."""
    return write_config(
        tmp_path,
        database_url,
        listener={"enabled": True, "host": "127.0.0.1", "port": free_port()},
        outgoing={
            "transport": "smtp",
            "retry_base_seconds": 0.2,
            "retry_max_seconds": 0.5,
            "max_attempts": 3,
            **outgoing,
        },
        smtp={"host": "127.0.0.1", "port": relay.port, "security": "none"},
        digest={"automatic": False},
    )


@asynccontextmanager
async def serving(config: Config, engine: AsyncEngine) -> AsyncIterator[int]:
    """The whole service, started; yields the listener's port."""
    service = Service(config, engine, clock=SystemClock())
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.wait_for(service.ready.wait(), 10)
    assert service.listener_port is not None
    try:
        yield service.listener_port
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def submit(port: int, raw: bytes) -> None:
    await aiosmtplib.send(
        raw, sender="bounces@firm.example.org", recipients=[QA], hostname="127.0.0.1", port=port
    )


async def outbox(engine: AsyncEngine) -> dict[str, OutboxMail]:
    async with session_factory(engine)() as tx:
        return {row.key: row for row in await tx.scalars(select(OutboxMail))}


async def quarantined(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as tx:
        states = list(await tx.scalars(select(InboundMessage.state)))
    return states.count(MessageState.QUARANTINED)


def acks(sink: SmtpSink) -> list[tuple[list[str], list[str]]]:
    """(envelope recipients, To addresses) of each acknowledgement the relay took."""
    found = []
    for received in sink.received:
        # RFC 6532 heads are UTF-8; the standard parser reads them from text, not bytes.
        message = email.message_from_string(
            received.raw.decode("utf-8"), policy=email.policy.default
        )
        if message["Auto-Submitted"] == "auto-replied":
            to = [address.addr_spec for address in message["To"].addresses]
            found.append((received.rcpt_tos, to))
    return found


@pytest.mark.asyncio
async def test_a_participant_with_an_internationalised_address_is_answered_over_smtputf8(
    tmp_path: Path, engine: AsyncEngine, migrated_url: str, smtputf8_sink: SmtpSink
) -> None:
    config = settings(tmp_path, migrated_url, smtputf8_sink)
    async with serving(config, engine) as port:
        await submit(port, question(RU, "[VC1] Вопрос", "Как делится стоимость?", "<ru-1@x>"))
        await wait_until(lambda: _state(engine, "ack:Q-1", OutboxState.SENT), what="the ack")
        await wait_until(lambda: _state(engine, "route:D-1", OutboxState.SENT), what="the copy")
    assert acks(smtputf8_sink) == [([RU], [RU])]
    assert [r.rcpt_tos for r in smtputf8_sink.to(EXPERT)] == [[EXPERT]]
    assert await quarantined(engine) == 0


@pytest.mark.asyncio
async def test_without_smtputf8_only_that_acknowledgement_fails_and_later_mail_goes_out(
    tmp_path: Path, engine: AsyncEngine, migrated_url: str, smtp_sink: SmtpSink
) -> None:
    config = settings(tmp_path, migrated_url, smtp_sink)
    async with serving(config, engine) as port:
        await submit(port, question(RU, "[VC1] Вопрос", "Как делится стоимость?", "<ru-1@x>"))
        await wait_until(lambda: _state(engine, "ack:Q-1", OutboxState.FAILED), what="failed")
        await submit(port, question(HR, "[VC1] Pitanje", "Tko vodi klaster?", "<hr-1@x>"))
        await wait_until(lambda: _state(engine, "ack:Q-2", OutboxState.SENT), what="later ack")
        await wait_until(lambda: _state(engine, "route:D-2", OutboxState.SENT), what="copies")
    rows = await outbox(engine)
    failed = rows["ack:Q-1"]
    assert failed.attempts == 1, "a permanent reason: failed at once, not retried"
    assert failed.last_error == f"the relay does not offer SMTPUTF8, needed for {RU}"
    assert failed.outcomes == {RU: {"outcome": "refused", "code": None, "text": failed.last_error}}
    # The expert still gets the question.
    assert any("[Q-1] Как делится стоимость?" in r.text() for r in smtp_sink.to(EXPERT))
    assert acks(smtp_sink) == [([HR], [HR])]
    assert await quarantined(engine) == 0


@pytest.mark.asyncio
async def test_an_address_with_a_comma_is_one_recipient(
    tmp_path: Path, engine: AsyncEngine, migrated_url: str, smtp_sink: SmtpSink
) -> None:
    config = settings(tmp_path, migrated_url, smtp_sink)
    async with serving(config, engine) as port:
        await submit(port, question(QUOTED, "[VC1] Vapros", "Kak?", "<bg-1@x>"))
        await wait_until(lambda: _state(engine, "ack:Q-1", OutboxState.SENT), what="the ack")
    assert (await outbox(engine))["ack:Q-1"].recipients == [QUOTED]
    assert acks(smtp_sink) == [([QUOTED], [QUOTED])]


async def _state(engine: AsyncEngine, key: str, state: OutboxState) -> bool:
    row = (await outbox(engine)).get(key)
    return row is not None and row.state == state


@pytest.mark.asyncio
async def test_an_address_no_mail_can_carry_loses_its_acknowledgement_not_its_question(
    tmp_path: Path, engine: AsyncEngine, migrated_url: str, smtp_sink: SmtpSink
) -> None:
    # 300 characters: more than any mail system takes (RFC 5321 allows 254 in a path).
    too_long = "p" * 284 + "@firm.example.bg"
    literal = "bob@[192.0.2.1]"  # an address literal is an address all the same
    config = settings(tmp_path, migrated_url, smtp_sink)
    async with serving(config, engine) as port:
        await submit(port, question(too_long, "[VC1] Long", "Can you hear me?", "<long-1@x>"))
        await submit(port, question(literal, "[VC1] Literal", "And me?", "<lit-1@x>"))
        # Both copies, not only D-2: it may be sent while D-1 is still on its way.
        for key in ("route:D-1", "route:D-2", "ack:Q-2"):
            await wait_until(lambda key=key: _state(engine, key, OutboxState.SENT), what=key)
    rows = await outbox(engine)
    assert "ack:Q-1" not in rows and rows["ack:Q-2"].recipients == [literal]
    # The two copies go out over several connections at once: either may arrive first.
    copies = sorted(r.text() for r in smtp_sink.to(EXPERT))
    assert len(copies) == 2
    assert "[Q-1] Can you hear me?" in copies[0] and "[Q-2] And me?" in copies[1]
    assert await quarantined(engine) == 0
