"""The running service: a forged reply through its SMTP listener is held, a signed one published.

The whole service runs (listener, IMAP poller on Dovecot, sender to the aiosmtpd sink); the
listener looks SPF, DKIM and DMARC up in the test's own DNS server.
"""

from __future__ import annotations

from collections.abc import Iterator

import aiosmtplib
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import Answer, AnswerState, InboundMessage, MessageState
from qa_mailer.db.engine import session_factory
from tests.e2e.conftest import MakeConfig, running
from tests.helpers import EXPERT, make_mail, wait_until
from tests.integration.test_authentication import DOMAIN, OURS, PROVIDER, SELECTOR, signed
from tests.integration.test_pipeline import reply_to
from tests.servers.dns import DkimKey, DnsServer, Zone, dkim_key, dns_server
from tests.servers.ports import free_port
from tests.servers.smtp_sink import SmtpSink

HR = "ana@drvo.example.hr"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> DkimKey:
    return dkim_key(tmp_path_factory.mktemp("dkim"))


@pytest.fixture
def dns(key: DkimKey) -> Iterator[DnsServer]:
    zone = Zone(
        {
            DOMAIN: ["v=spf1 ip4:192.0.2.1 -all"],  # the loopback is not the expert's MTA
            f"{SELECTOR}._domainkey.{DOMAIN}": [key.public_record],
            f"_dmarc.{DOMAIN}": ["v=DMARC1; p=reject"],
        }
    )
    with dns_server(zone) as server:
        yield server


async def states(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as session:
        return list(await session.scalars(select(Answer.state).order_by(Answer.id)))


async def message_states(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as session:
        return list(await session.scalars(select(InboundMessage.state).order_by(InboundMessage.id)))


@pytest.mark.asyncio
async def test_the_listener_holds_a_forged_reply_and_publishes_a_signed_one(
    e2e_config: MakeConfig, engine: AsyncEngine, smtp_sink: SmtpSink, dns: DnsServer, key: DkimKey
) -> None:
    config = e2e_config(
        listener={"enabled": True, "host": "127.0.0.1", "port": free_port()},
        expert_check={"require_authentication": True, "trusted_authserv_ids": [PROVIDER]},
        authentication={"verify": True, "authserv_id": OURS, "dns_servers": [dns.address]},
    )
    async with running(config, engine) as service:
        port = service.listener_port
        assert port is not None

        async def send(raw: bytes, mail_from: str) -> None:
            await aiosmtplib.send(
                raw,
                sender=mail_from,
                recipients=[config.address.address],
                port=port,
                hostname="127.0.0.1",
            )

        question = make_mail(sender=HR, subject="[VC1] Tko upravlja?", body="Tko vodi klaster?")
        await send(question, HR)
        await wait_until(lambda: _arrived(smtp_sink, EXPERT), what="the expert's copy")
        [copy] = [r.message for r in smtp_sink.to(EXPERT)]

        forged = reply_to(
            copy,
            "Forged answer",
            headers={"Authentication-Results": f"{PROVIDER}; dmarc=pass header.from={DOMAIN}"},
        )
        await send(forged, EXPERT)
        await wait_until(
            lambda: _states_are(engine, [AnswerState.HELD]), what="the forged reply held"
        )
        await send(signed(reply_to(copy, "Genuine answer"), key), EXPERT)
        await wait_until(lambda: _arrived(smtp_sink, HR, "Genuine answer"), what="the answer")
        assert await states(engine) == [AnswerState.HELD, AnswerState.PUBLISHED]
        assert not [
            r for r in smtp_sink.to(HR) if "Forged answer" in r.raw.decode(errors="replace")
        ]
        assert (await message_states(engine))[-2:] == [MessageState.HELD, MessageState.PROCESSED]


async def _arrived(sink: SmtpSink, address: str, text: str = "") -> bool:
    return any(text in r.raw.decode(errors="replace") for r in sink.to(address))


async def _states_are(engine: AsyncEngine, expected: list[str]) -> bool:
    return await states(engine) == expected
