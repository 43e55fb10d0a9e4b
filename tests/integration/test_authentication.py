"""Forged Authentication-Results: the listener verifies SPF, DKIM and DMARC itself.

An expert's reply reaches the real SMTP listener over the loopback; the listener looks the
records up in a real DNS server the test runs (dnslib, on 127.0.0.1), renames headers that
claim a trusted authserv-id, and writes its own verdict on top; the pipeline then holds or
publishes the reply. Nothing here reaches the internet.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import dkim
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import selectinload

from qa_mailer.config import Config
from qa_mailer.db import Answer, AnswerState, InboundMessage, MessageState, OutboxKind
from qa_mailer.db.engine import session_factory
from qa_mailer.ingest.authentication import MailAuthenticator
from qa_mailer.ingest.smtp import IntakeHandler, listening_port, start_listener
from tests.helpers import EXPERT, FakeClock, write_config
from tests.integration.test_pipeline import Desk, ask, make_desk, reply_to
from tests.servers.dns import DkimKey, DnsServer, Zone, dkim_key, dns_server, silent_dns_server

DOMAIN = EXPERT.rpartition("@")[2]
PROVIDER = "mx.clusters.example.org"
OURS = "qa.clusters.example.org"
SELECTOR = "s2026"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> DkimKey:
    return dkim_key(tmp_path_factory.mktemp("dkim"))


@pytest.fixture
def dns(key: DkimKey) -> Iterator[DnsServer]:
    zone = Zone(
        {
            DOMAIN: ["v=spf1 ip4:127.0.0.1 -all"],
            f"{SELECTOR}._domainkey.{DOMAIN}": [key.public_record],
            f"_dmarc.{DOMAIN}": ["v=DMARC1; p=reject"],
        }
    )
    with dns_server(zone) as server:
        yield server


def config_for(tmp_path: Path, database_url: str, dns_address: str) -> Config:
    return write_config(
        tmp_path,
        database_url,
        expert_check={"require_authentication": True, "trusted_authserv_ids": [PROVIDER]},
        authentication={
            "verify": True,
            "authserv_id": OURS,
            "dns_servers": [dns_address],
            "dns_timeout_seconds": 0.5,
        },
    )


@dataclass
class Listener:
    desk: Desk
    port: int

    async def deliver(self, raw: bytes, mail_from: str = EXPERT) -> tuple[InboundMessage, str]:
        """Send ``raw`` to the listener, process it; the stored message and its outcome."""
        await aiosmtplib.send(
            raw,
            sender=mail_from,
            recipients=[self.desk.config.address.address],
            hostname="127.0.0.1",
            port=self.port,
            local_hostname="mail.clusters.example.org",
        )
        async with session_factory(self.desk.engine)() as session:
            row = (
                await session.scalars(
                    select(InboundMessage)
                    .options(selectinload(InboundMessage.raw_mail))
                    .order_by(InboundMessage.id.desc())
                    .limit(1)
                )
            ).one()
        outcome = await self.desk.pipeline.process(row.id)
        assert outcome is not None
        return row, outcome.state

    async def route(self) -> EmailMessage:
        await self.desk.receive(ask())
        [route] = await self.desk.outbox(OutboxKind.ROUTE)
        return route

    async def answers(self) -> list[Answer]:
        async with session_factory(self.desk.engine)() as session:
            return list(await session.scalars(select(Answer).order_by(Answer.id)))


async def _listener(config: Config, engine: AsyncEngine) -> AsyncIterator[Listener]:
    desk = await make_desk(config, engine, FakeClock())
    authenticator = MailAuthenticator(
        config.authentication, config.expert_check.trusted_authserv_ids
    )
    handler = IntakeHandler(desk.store, config.address, "smtp", authenticator)
    server = await start_listener(replace(config.listener, port=0), handler)
    try:
        yield Listener(desk, listening_port(server))
    finally:
        server.close()
        await server.wait_closed()


@pytest_asyncio.fixture
async def listener(
    engine: AsyncEngine, tmp_path: Path, database_url: str, dns: DnsServer
) -> AsyncIterator[Listener]:
    async for value in _listener(config_for(tmp_path, database_url, dns.address), engine):
        yield value


def signed(raw: bytes, key: DkimKey) -> bytes:
    signature = dkim.sign(
        raw,
        SELECTOR.encode(),
        DOMAIN.encode(),
        key.private_pem,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    return bytes(signature) + raw


def headers(row: InboundMessage, name: str) -> list[str]:
    parsed = email.message_from_bytes(row.raw_mail.raw, policy=email.policy.compat32)
    return [" ".join(str(v).split()) for v in parsed.get_all(name, [])]


@pytest.mark.asyncio
async def test_a_forged_trusted_header_is_renamed_and_not_believed(listener: Listener) -> None:
    route = await listener.route()
    # Unsigned, and sent from an address the SPF record allows, but under a From domain
    # whose MAIL FROM is somewhere else: only the forged header would vouch for it.
    forged = reply_to(
        route,
        "Forged answer",
        headers={"Authentication-Results": f"{PROVIDER}; dmarc=pass header.from={DOMAIN}"},
    )
    row, state = await listener.deliver(forged, mail_from="someone@elsewhere.example.net")
    assert state == MessageState.HELD
    [ours] = headers(row, "Authentication-Results")
    assert (
        ours.startswith(f"{OURS}; spf=") and f"dmarc=fail (p=reject) header.from={DOMAIN}" in ours
    )
    assert headers(row, "X-Original-Authentication-Results") == [
        f"{PROVIDER}; dmarc=pass header.from={DOMAIN}"
    ]
    assert [a.state for a in await listener.answers()] == [AnswerState.HELD]


@pytest.mark.asyncio
async def test_a_header_claiming_our_own_id_is_renamed_too(listener: Listener) -> None:
    route = await listener.route()
    forged = reply_to(
        route, "Forged answer", headers={"Authentication-Results": f"{OURS}; dmarc=pass"}
    )
    row, state = await listener.deliver(forged, mail_from="someone@elsewhere.example.net")
    assert state == MessageState.HELD
    assert row.raw_mail.raw.startswith(f"Authentication-Results: {OURS};".encode())
    assert headers(row, "X-Original-Authentication-Results") == [f"{OURS}; dmarc=pass"]


@pytest.mark.asyncio
async def test_a_dkim_signed_reply_from_the_experts_domain_is_published(
    listener: Listener, key: DkimKey
) -> None:
    route = await listener.route()
    # MAIL FROM elsewhere, so only the signature can make DMARC pass.
    row, state = await listener.deliver(
        signed(reply_to(route, "Genuine answer"), key), mail_from="bounces@elsewhere.example.net"
    )
    [ours] = headers(row, "Authentication-Results")
    assert f"dkim=pass header.d={DOMAIN}" in ours and "dmarc=pass (aligned DKIM)" in ours
    assert state == MessageState.PROCESSED
    assert [a.state for a in await listener.answers()] == [AnswerState.PUBLISHED]


@pytest.mark.asyncio
async def test_an_spf_pass_from_an_allowed_address_is_published(listener: Listener) -> None:
    route = await listener.route()
    row, state = await listener.deliver(reply_to(route, "Genuine answer"))
    [ours] = headers(row, "Authentication-Results")
    assert "spf=pass" in ours and "dkim=none" in ours and "dmarc=pass (aligned SPF)" in ours
    assert state == MessageState.PROCESSED


@pytest.mark.asyncio
async def test_a_broken_signature_fails(listener: Listener, key: DkimKey) -> None:
    route = await listener.route()
    raw = signed(reply_to(route, "Genuine answer"), key).replace(b"Genuine", b"Altered")
    row, state = await listener.deliver(raw, mail_from="bounces@elsewhere.example.net")
    [ours] = headers(row, "Authentication-Results")
    assert "dkim=fail" in ours and f"header.d={DOMAIN}" in ours and "dmarc=fail" in ours
    assert state == MessageState.HELD
    assert [a.state for a in await listener.answers()] == [AnswerState.HELD]


@pytest.mark.asyncio
async def test_a_mail_from_an_address_spf_does_not_allow_fails(
    listener: Listener, dns: DnsServer
) -> None:
    dns.zone.txt[DOMAIN] = ["v=spf1 ip4:192.0.2.1 -all"]
    route = await listener.route()
    row, state = await listener.deliver(reply_to(route, "Genuine answer"))
    [ours] = headers(row, "Authentication-Results")
    assert "spf=fail" in ours and f"smtp.mailfrom={EXPERT}" in ours and "dmarc=fail" in ours
    assert state == MessageState.HELD


@pytest.mark.asyncio
async def test_a_dns_timeout_is_a_temperror_and_the_reply_is_held(
    engine: AsyncEngine, tmp_path: Path, database_url: str, key: DkimKey
) -> None:
    with silent_dns_server() as address:
        async for listener in _listener(config_for(tmp_path, database_url, address), engine):
            route = await listener.route()
            row, state = await listener.deliver(signed(reply_to(route, "Genuine answer"), key))
            [ours] = headers(row, "Authentication-Results")
            assert "spf=temperror" in ours and "dkim=temperror" in ours
            assert "dmarc=temperror" in ours
            assert state == MessageState.HELD
            [answer] = await listener.answers()
            assert answer.state == AnswerState.HELD and "DNS" in (answer.reason or "")
            assert await listener.desk.outbox(OutboxKind.ANSWER) == []


@pytest.mark.asyncio
async def test_over_imap_only_the_topmost_trusted_header_counts(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(
        tmp_path,
        database_url,
        expert_check={"require_authentication": True, "trusted_authserv_ids": [PROVIDER]},
    )
    desk = await make_desk(config, engine, FakeClock())
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    # The provider's own header on top vouches for nothing; the sender's forged one below
    # says pass.
    raw = (
        f"Authentication-Results: {PROVIDER}; dkim=none; dmarc=none header.from={DOMAIN}\r\n"
    ).encode() + reply_to(
        route,
        "Forged answer",
        headers={"Authentication-Results": f"{PROVIDER}; dmarc=pass header.from={DOMAIN}"},
    )
    assert (await desk.receive(raw)).state == MessageState.HELD
    # Our own authserv-id means nothing in mail fetched over IMAP: anyone can write it.
    raw = (f"Authentication-Results: {OURS}; dmarc=pass header.from={DOMAIN}\r\n").encode()
    assert (await desk.receive(raw + reply_to(route, "Forged again"))).state == MessageState.HELD
