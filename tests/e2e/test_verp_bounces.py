"""The running service: each mail leaves with a VERP envelope sender, and a bounce sent back
to it is matched to that very mail and recipient, even when it quotes nothing of the mail.

Mail in through the service's SMTP listener, mail out to the aiosmtpd relay, on SQLite and
PostgreSQL. A bounce to a VERP address whose signature is wrong names no mail of ours.
"""

from __future__ import annotations

import re

import aiosmtplib
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import Bounce, OutboxMail
from qa_mailer.db.engine import session_factory
from tests.e2e.conftest import MakeConfig, running
from tests.helpers import EXPERT, QA, make_mail, wait_until
from tests.integration.test_pipeline import reply_to
from tests.servers.ports import free_port
from tests.servers.smtp_sink import Received, SmtpSink

HR = "ana@drvo.example.hr"
# Where Ana's domain forwarded the answer: the bounce names this address, not hers.
FORWARDED = "ana.horvat@mail.drvo.example.hr"


def dsn(to: str, failed: str) -> bytes:
    """A Postfix-style delivery status notification that returns no part of the mail."""
    return f"""Return-Path: <>
From: MAILER-DAEMON@mail.drvo.example.hr (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 07 Dec 2026 10:15:02 +0000
Message-ID: <20261207101502.7F3@mail.drvo.example.hr>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b7F3"

--b7F3
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

<{failed}>: host mx said: 550 5.1.1 User unknown

--b7F3
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.drvo.example.hr

Final-Recipient: rfc822; {failed}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown

--b7F3--
""".replace("\n", "\r\n").encode()


async def bounces(engine: AsyncEngine) -> list[Bounce]:
    async with session_factory(engine)() as tx:
        return list(await tx.scalars(select(Bounce).order_by(Bounce.id)))


@pytest.mark.asyncio
async def test_a_bounce_to_the_verp_address_names_the_mail_and_its_recipient(
    e2e_config: MakeConfig, engine: AsyncEngine, smtp_sink: SmtpSink
) -> None:
    config = e2e_config(listener={"enabled": True, "host": "127.0.0.1", "port": free_port()})
    async with running(config, engine) as service:
        port = service.listener_port
        assert port is not None

        async def send(raw: bytes, mail_from: str, to: str) -> None:
            # Step by step: a bounce comes from the null sender, which send() refuses.
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
                await client.mail(mail_from)
                await client.rcpt(to)
                await client.data(raw)

        await send(make_mail(sender=HR, subject="[VC1] Tko?", body="Tko vodi klaster?"), HR, QA)
        await wait_until(lambda: _some(of_kind(smtp_sink, EXPERT, "route")), what="the copy")
        [copy] = [r.message for r in of_kind(smtp_sink, EXPERT, "route")]
        await send(reply_to(copy, "Komora."), EXPERT, str(copy["Reply-To"]))
        await wait_until(lambda: _some(of_kind(smtp_sink, HR, "answer")), what="the answer")
        [answer] = of_kind(smtp_sink, HR, "answer")
        [ack] = of_kind(smtp_sink, HR, "ack")
        async with session_factory(engine)() as tx:
            row = await tx.scalar(
                select(OutboxMail).where(
                    OutboxMail.rfc_message_id == str(answer.message["Message-ID"])
                )
            )
        assert row is not None
        # Every mail leaves with its own signed envelope sender.
        verp = answer.mail_from
        assert re.fullmatch(rf"qa\+bounce-{row.id}-[0-9a-f]{{16}}@clusters\.example\.org", verp)
        assert ack.mail_from != verp and ack.mail_from.startswith("qa+bounce-")

        # A bounce for a forwarded address, quoting nothing: matched by its VERP address.
        await send(dsn(verp, FORWARDED), "", verp)
        await wait_until(lambda: bounces(engine), what="the bounce recorded")
        [bounce] = await bounces(engine)
        assert (bounce.address, bounce.permanent, bounce.outbox_id, bounce.kind) == (
            HR,
            True,
            row.id,
            "answer",
        )
        assert bounce.question_id == row.question_id

        # The same address with another row's number and a made-up signature: no mail of ours.
        forged = verp.replace(f"bounce-{row.id}-", f"bounce-{row.id - 1}-")
        forged = re.sub(r"-[0-9a-f]{16}@", "-0123456789abcdef@", forged)
        await send(dsn(forged, HR), "", forged)
        await wait_until(lambda: _at_least(engine, 2), what="the forged bounce recorded")
        second = (await bounces(engine))[1]
        assert (second.address, second.outbox_id, second.kind) == (HR, None, None)


def of_kind(sink: SmtpSink, address: str, kind: str) -> list[Received]:
    return [r for r in sink.to(address) if f"<qa.{kind}." in str(r.message["Message-ID"])]


async def _some(items: list[Received]) -> bool:
    return bool(items)


async def _at_least(engine: AsyncEngine, n: int) -> bool:
    return len(await bounces(engine)) >= n
