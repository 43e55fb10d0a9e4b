"""Broken encoded words, NUL bytes, raw 8-bit and unlabelled code pages: questions arrive readable."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.config import Config
from qa_mailer.db import InboundMessage, Question
from qa_mailer.db.engine import session_factory
from tests.e2e.conftest import MakeConfig, running
from tests.helpers import EXPERT, wait_until
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.imap_client import append
from tests.servers.smtp_sink import SmtpSink

HEAD = (
    "From: {name} <{address}>\r\n"
    "To: qa@clusters.example.org\r\n"
    "Subject: {subject}\r\n"
    "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
    "Message-ID: <{tag}@hostile.example>\r\n"
    "MIME-Version: 1.0\r\n"
)


def hostile(
    tag: str, name: str, subject: str, body: bytes, content_headers: str, charset: str = "utf-8"
) -> bytes:
    address = f"{tag}@drvo.example.hr"
    head = HEAD.format(name=name, address=address, subject=subject, tag=tag)
    return (head + content_headers + "\r\n").encode(charset) + body


# Each: the mail as it arrives, then what the expert's copy must show.
CASES = [
    # A base64 encoded word whose padding is cut: its good neighbours stay decoded.
    (
        hostile(
            "b64",
            "Ana",
            "=?utf-8?b?QUFBQ?= [VC1] =?utf-8?q?Kako_klaster_poma=C5=BEe=3F?=",
            "Kako klaster pomaže malim firmama?\r\n".encode(),
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
        ),
        ["Kako klaster pomaže?", "Kako klaster pomaže malim firmama?"],
    ),
    # A NUL byte in the text part and in a quoted-printable HTML alternative.
    (
        hostile(
            "nul",
            "=?utf-8?b?" + base64.b64encode("Marko Perić\x00".encode()).decode() + "?=",
            "[VC1] Who leads\x00 a cluster?",
            b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            b"Who should lead\x00 a cluster at the start?\r\n"
            b"--b\r\nContent-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            b"<p>Who should lead=00 a cluster at the start?</p>\r\n--b--\r\n",
            'Content-Type: multipart/alternative; boundary="b"\r\n',
        ),
        # Dovecot stores a NUL in a header as the byte 0x80: the words around it must survive.
        ["Who leads", "a cluster?", "Who should lead a cluster at the start?", "from Marko Perić"],
    ),
    # Raw 8-bit headers, as a client that does not encode writes them: UTF-8, and windows-1251.
    (
        hostile(
            "raw8",
            "Петар Петров",
            "[VC1] Кой води клъстера?",
            "Кой трябва да води клъстера в началото?\r\n".encode(),
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n",
        ),
        ["Кой води клъстера?", "from Петар Петров"],
    ),
    (
        hostile(
            "cp1251",
            "Иван Петров",
            "[VC1] Как университеты помогают?",
            "Как университеты помогают кластеру?\r\n".encode("cp1251"),
            "Content-Type: text/plain; charset=windows-1251\r\nContent-Transfer-Encoding: 8bit\r\n",
            charset="cp1251",
        ),
        ["Как университеты помогают?", "from Иван Петров"],
    ),
    # Line breaks hidden in encoded words: no raw word in the salutation, no "Bcc:" line.
    (
        hostile(
            "crlf",
            "=?UTF-8?Q?Marko_=0D=0APeri=C4=87?=",
            "=?UTF-8?Q?[VC1]_Pitanje=0D=0ABcc:_victim@elsewhere.example?=",
            b"Tko vodi klaster?\r\n",
            "Content-Type: text/plain; charset=utf-8\r\n",
        ),
        ["from Marko Perić", "[VC1] Pitanje Bcc: victim@elsewhere.example"],
    ),
    # A KOI8-R body labelled windows-1251, as a misconfigured client sends it.
    (
        hostile(
            "koi8",
            "Olga",
            "[VC1] Vopros",
            "Какую роль играют университеты в сети кластера?\r\n".encode("koi8_r"),
            "Content-Type: text/plain; charset=windows-1251\r\nContent-Transfer-Encoding: 8bit\r\n",
        ),
        ["Какую роль играют университеты в сети кластера?"],
    ),
    # A body in windows-1250 labelled "x-unknown": Croatian, not "kuæe ... Takoðer".
    (
        hostile(
            "xunknown",
            "Marko Perić",
            "[VC1] Pitanje o kućama",
            "Kako klaster pomaže kućama? Također, Đurić šalje ponude.\r\n".encode("cp1250"),
            'Content-Type: text/plain; charset="x-unknown"\r\nContent-Transfer-Encoding: 8bit\r\n',
            charset="cp1250",
        ),
        ["Kako klaster pomaže kućama? Također, Đurić šalje ponude.", "from Marko Perić"],
    ),
]


@pytest.fixture
def config(e2e_config: MakeConfig) -> Config:
    return e2e_config()


@pytest.mark.asyncio
async def test_broken_words_and_nul_bytes_never_quarantine_a_question(
    config: Config,
    engine: AsyncEngine,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
) -> None:
    async with running(config, engine):
        await append(dovecot, imap_user, *[raw for raw, _ in CASES])

        async def both_at_the_expert() -> bool:
            return len(smtp_sink.to(EXPERT)) >= len(CASES)

        await wait_until(both_at_the_expert, what="both questions at the expert")

    async with session_factory(engine)() as tx:
        states = list(await tx.scalars(select(InboundMessage.state)))
        questions = list(await tx.scalars(select(Question).order_by(Question.id)))
    texts = [question.subject + question.body for question in questions]
    assert states == ["processed"] * len(CASES)
    assert len(questions) == len(CASES)
    assert all("\x00" not in text for text in texts)
    copies = "\n".join(
        f"{received.message['Subject']}\n{received.text()}" for received in smtp_sink.to(EXPERT)
    )
    for _, expected in CASES:
        for words in expected:
            assert words in copies, words
    assert "\x00" not in copies
    assert smtp_sink.to("victim@elsewhere.example") == []
    assert all(received.message["Bcc"] is None for received in smtp_sink.received)
