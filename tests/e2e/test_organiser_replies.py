"""The running service: an organiser approves a held reply by answering the notice, once.

Mail in through the service's SMTP listener, mail out to the aiosmtpd relay, SQLite and
PostgreSQL: a reply from the expert's private address is held, the notice reaches the
organisers at the relay, a stranger's "approve" does nothing, the organiser's publishes the
answer, and the same reply sent again publishes nothing more.
"""

from __future__ import annotations

import aiosmtplib
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import Answer, AnswerState, InboundMessage, MessageState
from qa_mailer.db.engine import session_factory
from tests.e2e.conftest import MakeConfig, running
from tests.e2e.test_secrets_in_logs import service_logging
from tests.helpers import EXPERT, ORGANISER, make_mail, wait_until
from tests.integration.test_pipeline import reply_to
from tests.servers.ports import free_port
from tests.servers.smtp_sink import Received, SmtpSink

__all__ = ["service_logging"]  # the fixture, used by name

HR = "ana@drvo.example.hr"
PRIVATE = "expert.at.home@mail.example.org"
STRANGER = "mallory@evil.example.org"


async def message_states(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as tx:
        return list(await tx.scalars(select(InboundMessage.state).order_by(InboundMessage.id)))


async def answer_states(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as tx:
        return list(await tx.scalars(select(Answer.state).order_by(Answer.id)))


def answers_at(sink: SmtpSink, address: str) -> list[Received]:
    return [r for r in sink.to(address) if "<qa.answer." in str(r.message["Message-ID"])]


def of_kind(sink: SmtpSink, address: str, kind: str) -> list[Received]:
    return [r for r in sink.to(address) if f"<qa.{kind}." in str(r.message["Message-ID"])]


@pytest.mark.asyncio
async def test_an_organiser_approves_a_held_reply_by_answering_the_notice(
    e2e_config: MakeConfig,
    engine: AsyncEngine,
    smtp_sink: SmtpSink,
    service_logging: pytest.LogCaptureFixture,
) -> None:
    config = e2e_config(
        listener={"enabled": True, "host": "127.0.0.1", "port": free_port()},
        digest={"notices": True, "notice_minutes": 0},
    )
    async with running(config, engine) as service:
        port = service.listener_port
        assert port is not None

        async def send(raw: bytes, mail_from: str, to: str) -> None:
            await aiosmtplib.send(
                raw, sender=mail_from, recipients=[to], port=port, hostname="127.0.0.1"
            )

        async def settled(count: int) -> bool:
            states = await message_states(engine)
            return len(states) >= count and not {
                MessageState.RECEIVED,
                MessageState.PROCESSING,
            } & set(states)

        question = make_mail(sender=HR, subject="[VC1] Tko upravlja?", body="Tko vodi klaster?")
        await send(question, HR, config.address.address)
        await wait_until(lambda: _some(of_kind(smtp_sink, EXPERT, "route")), what="the copy")
        [copy] = [r.message for r in of_kind(smtp_sink, EXPERT, "route")]

        # The expert answers from home: held; the organisers get the notice at the relay.
        await send(
            reply_to(copy, "Klaster vodi komora.", sender=PRIVATE), PRIVATE, str(copy["Reply-To"])
        )
        await wait_until(lambda: _some(of_kind(smtp_sink, ORGANISER, "notice")), 30, "the notice")
        [notice] = [r.message for r in of_kind(smtp_sink, ORGANISER, "notice")]
        async with session_factory(engine)() as tx:
            answer_ref = f"A-{await tx.scalar(select(Answer.id))}"
        assert f"or reply: approve {answer_ref}" in str(notice.get_body(("plain",)))
        token_address = str(notice["Reply-To"])
        assert token_address.startswith("qa+o") and token_address.endswith("@clusters.example.org")

        def command(sender: str, body: str) -> bytes:
            return make_mail(
                sender=sender,
                to=token_address,
                subject=f"Re: {notice['Subject']}",
                body=f"{body}\n\n> {answer_ref} waits\n",
                in_reply_to=str(notice["Message-ID"]),
            )

        # The notice forwarded to a stranger, who says "approve": held, nothing published.
        await send(command(STRANGER, f"approve {answer_ref}"), STRANGER, token_address)
        await wait_until(lambda: settled(3), what="the stranger's reply processed")
        assert (await message_states(engine))[-1] == MessageState.HELD
        assert await answer_states(engine) == [AnswerState.HELD]

        # The organiser's approve: the answer reaches the participant once, with a receipt.
        approve = command(ORGANISER, f"approve {answer_ref}")
        await send(approve, ORGANISER, token_address)
        await wait_until(lambda: _some(answers_at(smtp_sink, HR)), what="the answer delivered")
        await wait_until(lambda: _some(of_kind(smtp_sink, ORGANISER, "receipt")), what="receipt")
        [receipt] = of_kind(smtp_sink, ORGANISER, "receipt")
        assert f"{answer_ref}  published: sent to the participant" in receipt.text()

        # Replayed, as the same bytes and as a fresh copy with "approve all": nothing more.
        await send(approve, ORGANISER, token_address)
        await send(command(ORGANISER, "approve all"), ORGANISER, token_address)
        await wait_until(lambda: _count(of_kind(smtp_sink, ORGANISER, "receipt"), 2), what="2nd")
        await wait_until(lambda: settled(5), what="the replays processed")
        assert len(await message_states(engine)) == 5  # the same bytes are stored once
        assert "already published" in of_kind(smtp_sink, ORGANISER, "receipt")[-1].text()

    [answer] = answers_at(smtp_sink, HR)
    assert "Klaster vodi komora." in answer.text()
    assert await answer_states(engine) == [AnswerState.PUBLISHED]
    assert smtp_sink.to(STRANGER) == []
    # The notice's token is a secret like an expert's: never in the log, at DEBUG either.
    token = token_address.split("+o")[1].split("@")[0]
    assert service_logging.text and token not in service_logging.text


async def _some(items: list[Received]) -> bool:
    return bool(items)


async def _count(items: list[Received], n: int) -> bool:
    return len(items) >= n
