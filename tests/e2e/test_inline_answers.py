"""Issue 3 end to end: one expert mail answers three questions inline; each participant gets
only their own answer; the expert gets a receipt. Mail in over Dovecot, out over aiosmtpd."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from tests.e2e.conftest import MakeConfig, running
from tests.helpers import EXPERT, make_mail, wait_until
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.imap_client import append
from tests.servers.smtp_sink import SmtpSink

PARTICIPANTS = {
    "ana@drvo.example.hr": (
        "Ana Horvat",
        "Tko bi trebao voditi novi klaster?",
        "A neutral facilitator first.",
    ),
    "petar@mebeli.example.bg": (
        "Петър Иванов",
        "Как конкурентите се научават да си вярват?",
        "Through small joint projects.",
    ),
    "ivan@zavod.example.ru": (
        "Иван Петров",
        "Какую роль играют университеты?",
        "They train the people and carry knowledge.",
    ),
}


@pytest.fixture
def config(e2e_config: MakeConfig) -> Config:
    return e2e_config(programme={"expert_mail": "batch", "batch_minutes": 60})


def gmail_reply(batch: EmailMessage) -> bytes:
    """What Gmail sends when the expert types under each question of the batch."""
    body = batch.get_body(("plain",))
    assert body is not None
    blocks = body.get_content().replace("\r\n", "\n").strip().split("\n\n")
    intro, questions = blocks[0], blocks[1:]
    attribution = f"On Thu, 3 Dec 2026 at 15:00, {batch['From']} wrote:"
    plain = ["Dear colleagues, my answers are below.", "", attribution]
    html = [
        '<div dir="ltr">Dear colleagues, my answers are below.</div><br>'
        f'<div class="gmail_quote"><div dir="ltr" class="gmail_attr">{attribution.replace("<", "&lt;").replace(">", "&gt;")}<br></div>'
        f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);'
        f'padding-left:1ex">{intro.replace(chr(10), "<br>")}</blockquote>'
    ]
    plain += [f"> {line}" for line in intro.split("\n")]
    for block, (_, _, answer) in zip(questions, PARTICIPANTS.values(), strict=True):
        plain += [">"] + [f"> {line}" for line in block.split("\n")] + ["", answer, ""]
        html.append(
            f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
            f'rgb(204,204,204);padding-left:1ex">{block.replace(chr(10), "<br>")}</blockquote>'
            f"<div>{answer}</div><div><br></div>"
        )
    plain += ["--", "Prof. Example Expert"]
    html.append("</div><div>-- <br>Prof. Example Expert</div>")
    reply = EmailMessage()
    reply["From"] = f"Prof. Example Expert <{EXPERT}>"
    reply["To"] = str(batch["Reply-To"])
    reply["Subject"] = f"Re: {batch['Subject']}"
    reply["Date"] = format_datetime(SystemClock().now())
    reply["Message-ID"] = make_msgid(domain="mail.gmail.example.com")
    reply["In-Reply-To"] = str(batch["Message-ID"])
    reply["References"] = str(batch["Message-ID"])
    reply.set_content("\n".join(plain))
    reply.add_alternative("".join(html), subtype="html")
    return reply.as_bytes()


@pytest.mark.asyncio
async def test_one_reply_answers_three_questions(
    config: Config,
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
) -> None:
    async with running(config, engine) as service:
        await append(
            dovecot,
            imap_user,
            *[
                make_mail(
                    sender=f"{name} <{address}>",
                    subject="[VC1] Pitanje / Въпрос / Вопрос",
                    body=question,
                )
                for address, (name, question, _) in PARTICIPANTS.items()
            ],
        )
        await wait_until(lambda: _acked(smtp_sink), what="three acknowledgements")
        [sent] = await service.batches.send_due(now=True)
        assert len(sent.questions) == 3
        await wait_until(lambda: _at_expert(smtp_sink), what="the batch at the expert")
        [batch] = [r.message for r in smtp_sink.to(EXPERT)]
        assert batch["Subject"] == "[VC1] 3 questions: [Q-1] [Q-2] [Q-3]"
        await append(dovecot, imap_user, gmail_reply(batch))
        await wait_until(lambda: _answered(smtp_sink), what="three answers")
        await wait_until(lambda: _receipt(smtp_sink), what="the expert's receipt")

    for address, (_, question, answer) in PARTICIPANTS.items():
        [mail] = [r for r in smtp_sink.to(address) if "answer" in str(r.message["Message-ID"])]
        text = mail.text().replace("\r\n", "\n")
        assert answer in text and f"> {question}" in text
        others = [a for other, (_, _, a) in PARTICIPANTS.items() if other != address]
        assert not any(other in text for other in others), f"{address} got someone else's answer"
        assert "Prof. Example Expert" not in text and "Dear colleagues" not in text
    [receipt] = [r for r in smtp_sink.to(EXPERT) if "receipt" in str(r.message["Message-ID"])]
    assert receipt.message["Subject"] == "Receipt: 3 answered, 0 open [VC1]"
    assert "Every question of that mail now has an answer." in receipt.text()


async def _acked(sink: SmtpSink) -> bool:
    return all(sink.to(address) for address in PARTICIPANTS)


async def _at_expert(sink: SmtpSink) -> bool:
    return bool(sink.to(EXPERT))


async def _answered(sink: SmtpSink) -> bool:
    return all(
        any("answer" in str(r.message["Message-ID"]) for r in sink.to(address))
        for address in PARTICIPANTS
    )


async def _receipt(sink: SmtpSink) -> bool:
    return any("receipt" in str(r.message["Message-ID"]) for r in sink.to(EXPERT))
