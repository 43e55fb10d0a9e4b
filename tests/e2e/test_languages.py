"""Every participant is written to in their own language: acknowledgement and answer.

Questions come in over IMAP (Dovecot), mail goes out through the aiosmtpd relay. The
language is chosen from the question itself (these senders are not on the roster's language
column), with the country as tie-breaker: Serbian in the script the participant writes.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.config import Config
from qa_mailer.db import Thread
from qa_mailer.db.engine import session_factory
from tests.e2e.conftest import MakeConfig, running
from tests.helpers import EXPERT, make_mail, wait_until
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.imap_client import append
from tests.servers.smtp_sink import SmtpSink

# sender, question, its language, a line of the acknowledgement, a line of the answer mail
PARTICIPANTS = [
    (
        "Петър Иванов <petar@mebeli.example.bg>",
        "Как клъстерът помага на малките производители да изнасят? Благодаря предварително.",
        "bg",
        "Благодарим Ви за въпроса.",
        "Експертът отговори на Вашия въпрос",
    ),
    (
        "Ana Horvat <ana@drvo.example.hr>",
        "Kako klaster pomaže malim proizvođačima namještaja u izvozu? Tko ga treba voditi?",
        "hr",
        "zahvaljujemo Vam na pitanju.",
        "stigao je odgovor stručnjaka",
    ),
    (
        "Милан Јовановић <milan@namestaj.example.rs>",
        "Како кластер помаже малим произвођачима намештаја у извозу? Да ли је потребна подршка државе?",
        "sr",
        "хвала Вам на питању.",
        "стигао је одговор експерта",
    ),
    (
        "Jelena Marković <jelena@drvo.example.rs>",
        "Da li klaster može da pomogne malim firmama u izvozu nameštaja? Hvala unapred.",
        "sr-Latn",
        "hvala Vam na pitanju.",
        "stigao je odgovor eksperta",
    ),
    (
        "Ayşe Yılmaz <ayse@mobilya.example.com.tr>",
        "Küme küçük mobilya üreticilerine ihracatta nasıl yardım eder? Teşekkürler.",
        "tr",
        "Sorunuz için teşekkür ederiz.",
        "uzman tarafından yanıtlandı",
    ),
    (
        "Иван Петров <ivan@zavod.example.ru>",
        "Как кластер помогает малым производителям мебели в экспорте? Спасибо.",
        "ru",
        "Благодарим Вас за вопрос.",
        "Получен ответ эксперта",
    ),
    (
        "John Smith <john@firm.example.org>",
        "How does a cluster help small furniture makers to export?",
        "en",
        "thank you: your question has reached",
        "the expert has answered your question",
    ),
]


@pytest.fixture
def config(e2e_config: MakeConfig) -> Config:
    return e2e_config()


def address(sender: str) -> str:
    return sender.rpartition("<")[2].rstrip(">")


@pytest.mark.asyncio
async def test_each_participant_is_acknowledged_and_answered_in_their_language(
    config: Config,
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
) -> None:
    async with running(config, engine):
        await append(
            dovecot,
            imap_user,
            *[
                make_mail(sender=sender, subject="[VC1] Klaster / Кластер / Küme", body=text)
                for sender, text, *_ in PARTICIPANTS
            ],
        )

        async def all_copies() -> bool:
            return len(smtp_sink.to(EXPERT)) >= len(PARTICIPANTS)

        await wait_until(all_copies, timeout=20, what="every question at the expert")
        # The expert answers each copy, in English.
        replies = [
            make_mail(
                sender=EXPERT,
                to=str(copy.message["Reply-To"]),
                subject=f"Re: {copy.message['Subject']}",
                body=f"Start with a shared export office. ({copy.message['X-QA-Question']})",
                in_reply_to=str(copy.message["Message-ID"]),
            )
            for copy in smtp_sink.to(EXPERT)
        ]
        await append(dovecot, imap_user, *replies)

        async def all_answered() -> bool:
            return all(
                any("answer" in str(r.message["Message-ID"]) for r in smtp_sink.to(address(s)))
                for s, *_ in PARTICIPANTS
            )

        await wait_until(all_answered, timeout=20, what="every answer at its participant")

    async with session_factory(engine)() as tx:
        languages = dict(
            (await tx.execute(select(Thread.participant_email, Thread.language))).all()
        )
    for sender, _, language, ack_line, answer_line in PARTICIPANTS:
        who = address(sender)
        assert languages[who] == language, who
        mails = {str(r.message["Message-ID"]).split(".")[1]: r for r in smtp_sink.to(who)}
        assert ack_line in mails["ack"].text(), (who, mails["ack"].text())
        assert answer_line in mails["answer"].text(), (who, mails["answer"].text())
        assert "Start with a shared export office." in mails["answer"].text()
        # One "Re:", our reference once, the participant's own tag kept.
        assert mails["ack"].message["Subject"].startswith("Re: [VC1] ")
        assert mails["ack"].message["Subject"].count("Re:") == 1
    # The expert's copy says when and in which language each question was asked.
    copies = "\n".join(copy.text() for copy in smtp_sink.to(EXPERT))
    for name in ("Bulgarian", "Croatian", "Serbian (Cyrillic)", "Serbian (Latin)", "Turkish"):
        assert f"written in {name}." in copies
