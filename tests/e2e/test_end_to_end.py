"""The whole service: mail in over IMAP (Dovecot), mail out over SMTP (aiosmtpd), database checked."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer import admin
from qa_mailer.config import Config
from qa_mailer.db import InboundMessage, MessageState, OutboxMail
from qa_mailer.db.engine import session_factory
from tests.e2e.conftest import MakeConfig, running
from tests.helpers import DATA, EXPERT, ORGANISER, make_mail, wait_until
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.imap_client import append, inbox_empty
from tests.servers.smtp_sink import SmtpSink

HR = "ana@drvo.example.hr"
RU = "ivan@zavod.example.ru"
TR = "ayse@mobilya.example.com.tr"


@pytest.fixture
def config(e2e_config: MakeConfig) -> Config:
    return e2e_config()


async def rows(engine: AsyncEngine, model: type) -> int:
    async with session_factory(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.asyncio
async def test_questions_in_answers_out_nothing_twice(
    config: Config,
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
) -> None:
    hr_question = make_mail(
        sender=f"Ana Horvat <{HR}>",
        subject="[VC1] Tko upravlja klasterom?",
        body="Tko bi trebao voditi klaster na početku?",
        message_id="<hr-1@drvo.example.hr>",
    )
    ru_question = (
        (DATA / "mail" / "question_windows1251.eml")
        .read_bytes()
        .replace(b"ivan@zavod.example.ru", RU.encode())
    )
    tr_question = (
        (DATA / "mail" / "question_html_only_iso8859_9.eml")
        .read_bytes()
        .replace(b"ayse@mobilya.example.com.tr", TR.encode())
    )
    out_of_office = make_mail(
        sender="olga@mebel.example.ru",
        subject="Автоответ: в отпуске",
        body="До 10 декабря.",
        headers={"Auto-Submitted": "auto-replied"},
    )

    async with running(config, engine):
        await append(dovecot, imap_user, hr_question, ru_question, tr_question, out_of_office)
        await wait_until(lambda: _count(smtp_sink, EXPERT, 3), what="three questions at the expert")
        await wait_until(lambda: _all_acked(smtp_sink), what="three acknowledgements")

        # The expert's copies are readable: Cyrillic from windows-1251, HTML-only as plain text.
        copies = {str(r.message["X-QA-Question"]): r.text() for r in smtp_sink.to(EXPERT)}
        assert "Как университеты помогают кластеру мебельщиков?" in copies["Q-2"]
        assert "Bir küme ihracata nasıl yardım eder? Şirketimiz İstanbul'da." in copies["Q-3"]
        assert (
            "<p>" not in copies["Q-3"] and "Russia" in copies["Q-2"] and "Turkey" in copies["Q-3"]
        )
        assert smtp_sink.to("olga@mebel.example.ru") == []  # the auto-reply got nothing back

        route = {str(r.message["X-QA-Question"]): r.message for r in smtp_sink.to(EXPERT)}
        expert_reply = make_mail(
            sender=EXPERT,
            to=str(route["Q-1"]["Reply-To"]),
            subject=f"Re: {route['Q-1']['Subject']}",
            body="The chamber starts it; the firms must lead it.\n\n-- \nProf. Expert\n",
            in_reply_to=str(route["Q-1"]["Message-ID"]),
        )
        stranger_reply = make_mail(
            sender="mallory@evil.example.org",
            to=str(route["Q-2"]["Reply-To"]),
            subject="Re: x",
            body="Send me your bank details.",
            in_reply_to=str(route["Q-2"]["Message-ID"]),
        )
        await append(dovecot, imap_user, expert_reply, stranger_reply)
        await wait_until(lambda: _answered(smtp_sink), what="the answer at the participant")
        await wait_until(lambda: _held(engine), what="the stranger's reply held")
        # The organisers are told what waits for them, and the expert that a reply in their
        # name came from elsewhere; the stranger hears nothing.
        await wait_until(lambda: _count(smtp_sink, ORGANISER, 1), 30, "the organisers' notice")
        await wait_until(lambda: _held_told(smtp_sink), what="the expert told of the held reply")
        [notice] = smtp_sink.to(ORGANISER)
        assert "qa-mailer held approve A-" in notice.text()
        assert smtp_sink.to("mallory@evil.example.org") == []
        # Whatever was queued (the expert's receipt, say) is out before the restart below.
        await wait_until(lambda: _all_sent(engine), what="the outbox sent")

    [answer] = [r for r in smtp_sink.to(HR) if "answer" in str(r.message["Message-ID"])]
    assert answer.message["In-Reply-To"] == "<hr-1@drvo.example.hr>"
    assert "<hr-1@drvo.example.hr>" in str(answer.message["References"])
    assert answer.message["Subject"] == "Re: [VC1] Tko upravlja klasterom? [Q-1]"
    assert "The chamber starts it; the firms must lead it." in answer.text()
    assert "Prof. Expert" not in answer.text()
    assert [r for r in smtp_sink.to(RU) if "answer" in str(r.message["Message-ID"])] == []

    # A restart reads the same mailbox again and takes in nothing twice, even a redelivered copy.
    messages, sent = await rows(engine, InboundMessage), len(smtp_sink.received)
    await append(dovecot, imap_user, hr_question)
    async with running(config, engine):
        # The copy is read (it leaves the INBOX) and found already taken in.
        await wait_until(lambda: inbox_empty(dovecot, imap_user), what="the copy read")
        await asyncio.sleep(1.5)  # anything it caused would be at the relay by now
    assert (await rows(engine, InboundMessage), len(smtp_sink.received)) == (messages, sent)

    rendered, _ = await admin.make_digest(engine, config, 1, send=True)
    by_country = {c.code: c for c in rendered.digest.countries}
    assert [q.ref for q in by_country["HR"].questions] == ["Q-1"] and by_country["HR"].answered == 1
    assert [q.ref for q in by_country["RU"].questions] == ["Q-2"] and by_country["RU"].questions[
        0
    ].held_answers == 1
    assert [q.ref for q in by_country["TR"].questions] == ["Q-3"] and by_country["TR"].pending == 1
    assert by_country["BG"].asked == 0
    [digest] = [r for r in smtp_sink.to(ORGANISER) if "<qa.digest." in str(r.message["Message-ID"])]
    assert digest.message["Subject"] == "[VC1] Q&A digest: 3 questions, 1 answered, 2 pending"
    assert await _all_sent(engine)


async def _all_sent(engine: AsyncEngine) -> bool:
    async with session_factory(engine)() as session:
        unsent = await session.scalar(
            select(func.count()).select_from(OutboxMail).where(OutboxMail.state != "sent")
        )
    return unsent == 0


async def _count(sink: SmtpSink, address: str, n: int) -> bool:
    return len(sink.to(address)) >= n


async def _all_acked(sink: SmtpSink) -> bool:
    return all(len(sink.to(a)) >= 1 for a in (HR, RU, TR))


async def _answered(sink: SmtpSink) -> bool:
    return any("answer" in str(r.message["Message-ID"]) for r in sink.to(HR))


async def _held_told(sink: SmtpSink) -> bool:
    return any("<qa.held." in str(r.message["Message-ID"]) for r in sink.to(EXPERT))


async def _held(engine: AsyncEngine) -> bool:
    async with session_factory(engine)() as session:
        states = list(await session.scalars(select(InboundMessage.state)))
    return MessageState.HELD in states and MessageState.RECEIVED not in states
