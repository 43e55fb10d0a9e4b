"""The SMTP/LMTP listener answers 250 only after the message is committed, 4xx when it cannot be."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import aiosmtplib
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import selectinload

from qa_mailer.addresses import ServiceAddress
from qa_mailer.clock import SystemClock
from qa_mailer.config import ListenerConfig
from qa_mailer.db import InboundMessage
from qa_mailer.db.engine import create_engine, session_factory
from qa_mailer.ingest.smtp import IntakeHandler, listening_port, start_listener
from qa_mailer.ingest.store import MessageStore
from tests.helpers import QA, make_mail
from tests.servers.ports import free_port

LISTENER = ListenerConfig(
    enabled=True, host="127.0.0.1", port=0, protocol="smtp", max_message_bytes=100_000
)


async def listen(engine: AsyncEngine, protocol: str = "smtp") -> tuple[asyncio.Server, list[int]]:
    stored: list[int] = []
    store = MessageStore(session_factory(engine), SystemClock(), on_stored=lambda: stored.append(1))
    handler = IntakeHandler(store, ServiceAddress.parse(QA), protocol)
    server = await start_listener(replace(LISTENER, protocol=protocol), handler)  # type: ignore[arg-type]
    return server, stored


@pytest_asyncio.fixture
async def listener(engine: AsyncEngine) -> AsyncIterator[tuple[int, list[int]]]:
    server, stored = await listen(engine)
    yield listening_port(server), stored
    server.close()


async def count(engine: AsyncEngine) -> int:
    async with session_factory(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(InboundMessage)) or 0)


@pytest.mark.asyncio
async def test_250_means_the_message_is_in_the_database(
    engine: AsyncEngine, listener: tuple[int, list[int]]
) -> None:
    port, stored = listener
    raw = make_mail(sender="ana@drvo.example.hr", subject="Q", body="Why?")
    _, message = await aiosmtplib.send(
        raw,
        sender="ana@drvo.example.hr",
        recipients=["qa+vc2@clusters.example.org"],
        hostname="127.0.0.1",
        port=port,
    )
    assert message.startswith("2.0.0 OK stored as")
    async with session_factory(engine)() as session:
        row = (
            await session.scalars(
                select(InboundMessage).options(selectinload(InboundMessage.raw_mail))
            )
        ).one()
    assert row.raw_mail.raw.replace(b"\r\n", b"\n") == raw
    assert (row.source, row.envelope_from, row.envelope_to) == (
        "smtp",
        "ana@drvo.example.hr",
        "qa+vc2@clusters.example.org",
    )
    assert row.state == "received" and row.peer is not None and row.peer.startswith("127.0.0.1:")
    assert stored == [1]


@pytest.mark.asyncio
async def test_the_same_mail_twice_is_stored_once(
    engine: AsyncEngine, listener: tuple[int, list[int]]
) -> None:
    port, _ = listener
    raw = make_mail(sender="ana@drvo.example.hr", subject="Q", body="Why?")
    for trace in (
        b"",
        b"Received: from relay.example.org by mx.example.org; Thu, 3 Dec 2026 10:00:00 +0000\r\n",
    ):
        await aiosmtplib.send(
            trace + raw,
            sender="ana@drvo.example.hr",
            recipients=[QA],
            hostname="127.0.0.1",
            port=port,
        )
    assert await count(engine) == 1


@pytest.mark.asyncio
async def test_mail_for_other_addresses_is_refused(
    engine: AsyncEngine, listener: tuple[int, list[int]]
) -> None:
    port, _ = listener
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await aiosmtplib.send(
            make_mail(sender="a@b.example.org", subject="x", body="y"),
            sender="a@b.example.org",
            recipients=["someone@clusters.example.org"],
            hostname="127.0.0.1",
            port=port,
        )
    assert refused.value.recipients[0].code == 550
    assert await count(engine) == 0


@pytest.mark.asyncio
async def test_database_unavailable_answers_451_so_the_sender_retries() -> None:
    broken = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere")
    server, stored = await listen(broken)
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as error:
            await aiosmtplib.send(
                make_mail(sender="a@b.example.org", subject="x", body="y"),
                sender="a@b.example.org",
                recipients=[QA],
                hostname="127.0.0.1",
                port=listening_port(server),
            )
        assert error.value.code == 451
        assert stored == []
    finally:
        server.close()
        await broken.dispose()


@pytest.mark.asyncio
async def test_lmtp_answers_data_once_per_recipient(engine: AsyncEngine) -> None:
    server, _ = await listen(engine, "lmtp")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", listening_port(server))

        async def say(line: str) -> list[str]:
            if line:
                writer.write(line.encode() + b"\r\n")
            replies = [(await reader.readline()).decode().rstrip()]
            while replies[-1][3:4] == "-":
                replies.append((await reader.readline()).decode().rstrip())
            return replies

        assert (await say(""))[0].startswith("220")
        assert (await say("LHLO test.example.org"))[-1].startswith("250")
        assert (await say("MAIL FROM:<a@b.example.org>"))[0].startswith("250")
        assert (await say(f"RCPT TO:<{QA}>"))[0].startswith("250")
        assert (await say("RCPT TO:<qa+vc1@clusters.example.org>"))[0].startswith("250")
        assert (await say("DATA"))[0].startswith("354")
        writer.write(make_mail(sender="a@b.example.org", subject="x", body="y") + b"\r\n.\r\n")
        first, second = (await reader.readline()).decode(), (await reader.readline()).decode()
        assert first.startswith("250 2.0.0 OK stored as") and second == first
        writer.close()
    finally:
        server.close()
    assert await count(engine) == 1
