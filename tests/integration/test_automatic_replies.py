"""The expert's out-of-office reply is held, never published, and the expert and organisers hear.

A vacation responder answers the expert's copy with a plain "Re: ..." (no Auto-Submitted)
that carries the reply token and passes every other check. The copy goes out through a
real SMTP relay (aiosmtpd), the reply comes back through the pipeline, and the notice goes
out through the relay again; the clock is a test clock, moved instead of slept.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import Answer, AnswerState, MessageState, OutboxKind
from qa_mailer.db.engine import session_factory
from qa_mailer.send.sender import Sender
from tests.helpers import EXPERT, ORGANISER, FakeClock, registered, write_config
from tests.integration.test_pipeline import Desk, ask, make_desk, plain, reply_to
from tests.integration.test_sender import OUTGOING, relay
from tests.servers.smtp_sink import SmtpSink

# What vacation responders write, one per language of the programme.
ABSENCE_NOTICES = {
    "en": "Thank you for your message. I am out of the office until 14 December with limited "
    "access to e-mail. I will reply upon my return.",
    "bg": "Благодаря за писмото. В отпуск съм до 14 декември и ще отговоря след завръщането си.",
    "hr": "Hvala na poruci. Na godišnjem sam odmoru do 14. prosinca. Po povratku ću odgovoriti.",
    "sr-latn": "Hvala na poruci. Odsutan sam do 14. decembra i odgovoriću po povratku.",
    "sr-cyrl": "Хвала на поруци. Одсутан сам до 14. децембра и одговорићу по повратку.",
    "tr": "Mesajınız için teşekkürler. 14 Aralık tarihine kadar izindeyim, döndüğümde yanıt vereceğim.",
    "ru": "Спасибо за письмо. Я в отпуске до 14 декабря, отвечу по возвращении.",
}


class Relay:
    """The desk with its outbox going out through the SMTP sink."""

    def __init__(self, desk: Desk, sink: SmtpSink, sender: Sender):
        self.desk = desk
        self.sink = sink
        self.sender = sender

    async def copy_to_expert(self) -> EmailMessage:
        """A participant asks; a second later the expert's copy goes out through the relay."""
        await self.desk.receive(ask())
        self.desk.clock.advance(seconds=1)
        await self.sender.deliver_due()
        [copy] = [r.message for r in self.sink.to(EXPERT) if "[Q-1]" in str(r.message["Subject"])]
        return copy

    async def answers(self) -> list[Answer]:
        async with session_factory(self.desk.engine)() as session:
            return list(await session.scalars(select(Answer).order_by(Answer.id)))

    def notices(self) -> list[EmailMessage]:
        return [
            r.message for r in self.sink.received if str(r.message["Subject"]).startswith("Held:")
        ]


@pytest_asyncio.fixture
async def relayed(
    engine: AsyncEngine, tmp_path: Path, database_url: str, smtp_sink: SmtpSink
) -> Relay:
    config = write_config(tmp_path, database_url, expert_check={"min_reply_seconds": 60})
    clock = FakeClock()
    desk = await make_desk(config, engine, clock)
    workers = await registered(session_factory(engine), clock, ("send",))
    sender = Sender(session_factory(engine), relay(smtp_sink.port), OUTGOING, clock, workers)
    return Relay(desk, smtp_sink, sender)


@pytest.mark.asyncio
@pytest.mark.parametrize("language", sorted(ABSENCE_NOTICES))
async def test_an_out_of_office_reply_is_held_and_the_expert_and_organisers_are_told(
    relayed: Relay, language: str
) -> None:
    copy = await relayed.copy_to_expert()
    # Hours later, so only the words can give it away.
    relayed.desk.clock.advance(hours=3)
    outcome = await relayed.desk.receive(reply_to(copy, ABSENCE_NOTICES[language]))
    assert outcome.state == MessageState.HELD
    assert (outcome.reason or "").startswith("out-of-office: ")
    [answer] = await relayed.answers()
    assert answer.state == AnswerState.HELD
    assert await relayed.desk.outbox(OutboxKind.ANSWER) == []
    await relayed.sender.deliver_due()
    [notice] = relayed.notices()
    [delivered] = [r for r in relayed.sink.received if r.message["Subject"] == notice["Subject"]]
    assert sorted(delivered.rcpt_tos) == sorted([EXPERT, ORGANISER])
    assert notice["Auto-Submitted"] == "auto-replied" and notice["Reply-To"] == ORGANISER
    # The notice carries no reply token: a reply to it proves nothing.
    assert "+r" not in str(notice["Reply-To"]) and "qa.route." not in str(notice["Message-ID"])
    text = plain(notice)
    assert "looks like an automatic reply" in text and f"A-{answer.id}" in text


@pytest.mark.asyncio
async def test_a_real_answer_after_an_absence_is_published(relayed: Relay) -> None:
    copy = await relayed.copy_to_expert()
    relayed.desk.clock.advance(days=2)
    body = (
        "I was away, sorry for the delay.\n\n"
        "1. The cluster manager should come from the member companies, chosen by them."
    )
    outcome = await relayed.desk.receive(reply_to(copy, body))
    assert outcome.state == MessageState.PROCESSED
    assert [a.state for a in await relayed.answers()] == [AnswerState.PUBLISHED]
    await relayed.sender.deliver_due()
    assert relayed.notices() == []
    assert [r for r in relayed.sink.received if "ana@drvo.example.hr" in r.rcpt_tos]


@pytest.mark.asyncio
async def test_a_reply_implausibly_soon_after_the_copy_is_held_and_told_once(
    relayed: Relay,
) -> None:
    copy = await relayed.copy_to_expert()
    relayed.desk.clock.advance(seconds=20)
    # Nothing in the words gives it away: only the time does.
    outcome = await relayed.desk.receive(reply_to(copy, "Thank you for your mail."))
    assert outcome.state == MessageState.HELD
    assert (outcome.reason or "").startswith("too-soon: the reply came 20 s after")
    relayed.desk.clock.advance(seconds=5)
    again = await relayed.desk.receive(reply_to(copy, "I am away until Monday."))
    assert again.state == MessageState.HELD
    await relayed.sender.deliver_due()
    # One notice for the expert's copy, however many automatic replies it draws.
    [notice] = relayed.notices()
    assert "20 s after the expert's copy was sent" in plain(notice)
    assert await relayed.desk.outbox(OutboxKind.ANSWER) == []


@pytest.mark.asyncio
async def test_a_reply_after_the_minimum_time_is_published(relayed: Relay) -> None:
    copy = await relayed.copy_to_expert()
    relayed.desk.clock.advance(seconds=61)
    outcome = await relayed.desk.receive(reply_to(copy, "Chosen by the members."))
    assert outcome.state == MessageState.PROCESSED
    assert [a.state for a in await relayed.answers()] == [AnswerState.PUBLISHED]
