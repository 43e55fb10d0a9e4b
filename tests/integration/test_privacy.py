"""A participant's data on request: everything held about them, and erasing it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import JSON, LargeBinary, String, Text, cast, select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer import admin
from qa_mailer.classify.roster import load_roster
from qa_mailer.db import Base, OutboxKind
from qa_mailer.db.engine import session_factory
from qa_mailer.digest.build import build_digest
from qa_mailer.organise import privacy
from tests.helpers import FakeClock, make_mail, write_config
from tests.integration.test_pipeline import Desk, ask, make_desk, reply_to
from tests.servers.dovecot import DovecotServer, ImapUser, doveadm, imap_config_for
from tests.servers.imap_client import append, flags_in

ANA = "ana@drvo.example.hr"
ANA_TEXT = "Tko bi trebao voditi klaster?"


@pytest_asyncio.fixture
async def desk(engine: AsyncEngine, tmp_path: Path, database_url: str) -> Desk:
    desk = await make_desk(write_config(tmp_path, database_url), engine, FakeClock())
    await desk.receive(ask(sender=f"Ana Horvat <{ANA.upper()}>", message_id="<q1@drvo.example.hr>"))
    await desk.receive(
        make_mail(
            sender="Petar Ivanov <petar@mebeli.example.bg>",
            subject="[VC2] Кой финансира клъстера?",
            body="Кой финансира клъстера?",
        )
    )
    routes = await desk.outbox(OutboxKind.ROUTE)
    desk.clock.advance(hours=1)
    await desk.receive(reply_to(routes[0], "The chamber should start it."))
    await desk.receive(reply_to(routes[1], "The firms.", sender="mallory@evil.example.org"))
    # Her out-of-office notice, recorded and ignored.
    await desk.receive(
        make_mail(
            sender=f"Ana Horvat <{ANA}>",
            subject="Automatic reply: [VC2] Tko upravlja klasterom?",
            body="Odsutna sam.",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    return desk


async def traces(engine: AsyncEngine, *needles: str) -> list[str]:
    """Every table.column where any of ``needles`` occurs, text, JSON and raw mail alike."""
    found = []
    async with session_factory(engine)() as tx:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, String | Text | JSON):
                    values = [str(v) for v in await tx.scalars(select(cast(column, Text)))]
                elif isinstance(column.type, LargeBinary):
                    values = [
                        bytes(v).decode("utf-8", "replace")
                        for v in await tx.scalars(select(column))
                        if v is not None
                    ]
                else:
                    continue
                for needle in needles:
                    if any(needle.casefold() in (v or "").casefold() for v in values):
                        found.append(f"{table.name}.{column.name}: {needle}")
    return found


@pytest.mark.asyncio
async def test_everything_held_about_a_participant_is_exported(desk: Desk) -> None:
    data = json.loads(await privacy.export_participant(desk.engine, desk.config, ANA.upper()))
    assert data["email"] == ANA and data["roster"]["organisation"] == "Drvo"
    [question] = data["questions"]
    assert question["text"] == ANA_TEXT and question["ref"] == "Q-1"
    assert [a["text"] for a in question["answers"]] == ["The chamber should start it."]
    assert len(data["messages"]) == 2 and ANA_TEXT in data["messages"][0]["raw"]
    assert {m["kind"] for m in data["mails"]} == {"ack", "route", "answer"}
    # Nothing of anyone else's.
    assert "petar" not in json.dumps(data, ensure_ascii=False)


@pytest.mark.asyncio
async def test_an_erase_leaves_no_trace_and_the_digests_still_count(desk: Desk) -> None:
    assert await traces(desk.engine, ANA, ANA_TEXT)
    erased = await privacy.erase_participant(desk.engine, desk.config, ANA)
    assert (erased.questions, erased.messages) == (1, 3)
    assert erased.on_roster
    assert await traces(desk.engine, ANA, ANA_TEXT, "Ana Horvat", "Odsutna sam") == []
    async with session_factory(desk.engine)() as tx:
        roster = load_roster(desk.config.roster, desk.config.countries)
        digest = await build_digest(tx, desk.config, roster, 2, desk.clock.now())
    # Her question is still counted, answered, in her country; Petar's is untouched.
    assert (digest.asked, digest.answered, digest.held) == (2, 1, 1)
    [croatia] = [c for c in digest.countries if c.code == "HR"]
    assert croatia.answered == 1
    assert await traces(desk.engine, "petar@mebeli.example.bg", "Кой финансира клъстера?")
    [held] = await admin.held_answers(desk.engine)
    assert held.body == "The firms."
    again = await privacy.erase_participant(desk.engine, desk.config, ANA)
    assert (again.questions, again.messages) == (0, 0)


PARTICIPANTS = {
    "ana@drvo.example.hr": (
        "Ana Horvat",
        "[VC2] Tko vodi klaster?",
        "Tko treba voditi klaster u Zagrebu?",
    ),
    "milan@gmail.example.com": (
        "Milan Jovanovic",
        "[VC2] Ko vodi klaster?",
        "Ko treba da vodi klaster u Novom Sadu?",
    ),
    "ayse@mobilya.example.com.tr": (
        "Ayse Yilmaz",
        "[VC2] Kim yonetmeli?",
        "Kumeyi Istanbul'da kim yonetmeli?",
    ),
}


@pytest.mark.asyncio
async def test_no_participant_ever_sees_another_participants_address_or_text(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    # One batch to the expert, an answer to the first, one question merged before it and
    # one after:
    # every way a mail could carry one participant's data to another.
    config = write_config(tmp_path, database_url, programme={"expert_mail": "batch"})
    desk = await make_desk(config, engine, FakeClock())
    for address, (name, subject, body) in PARTICIPANTS.items():
        await desk.receive(make_mail(sender=f"{name} <{address}>", subject=subject, body=body))
    await privacy_merge(desk, 2, into=1)
    await admin.send_batches(desk.engine, desk.config, 2)
    [route] = await desk.outbox(OutboxKind.ROUTE)
    desk.clock.advance(hours=1)
    await desk.receive(reply_to(route, "Q-1: The chamber starts it and the firms lead it."))
    await privacy_merge(desk, 3, into=1)
    seen = 0
    for mail in await desk.outbox():
        recipients = [str(a).lower() for a in str(mail["To"]).split(",")]
        text = privacy.mail_text(mail.as_bytes())
        for address in PARTICIPANTS:
            if any(address in r for r in recipients):
                seen += 1
                others = [(a, p) for a, p in PARTICIPANTS.items() if a != address]
                for other, (other_name, _, other_body) in others:
                    assert other not in text and other_name not in text
                    assert other_body not in text, (address, mail["Subject"])
    # Each participant got an acknowledgement and the one answer.
    assert seen == 6
    answers = await desk.outbox(OutboxKind.ANSWER)
    assert sorted(str(m["To"]) for m in answers) == sorted(PARTICIPANTS)


async def privacy_merge(desk: Desk, number: int, *, into: int) -> None:
    from qa_mailer.organise.questions import merge_questions

    await merge_questions(desk.engine, desk.config, number, into=into)


@pytest.mark.asyncio
async def test_an_erase_deletes_the_participants_mail_from_the_mailbox(
    dovecot: DovecotServer,
    imap_user: ImapUser,
    monkeypatch: pytest.MonkeyPatch,
    engine: AsyncEngine,
    tmp_path: Path,
    database_url: str,
) -> None:
    from qa_mailer.organise.mailbox import erase_mailbox_copies

    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", imap_user.password)
    imap_config = imap_config_for(dovecot, imap_user)
    doveadm(dovecot, "mailbox", "create", "-u", imap_user.name, "Processed")

    theirs = [
        make_mail(sender=f"Ana Horvat <{ANA}>", subject=f"[VC2] Pitanje {n}", body="?")
        for n in range(3)
    ]
    other = make_mail(sender="petar@mebeli.example.bg", subject="[VC1] Въпрос", body="?")
    await append(dovecot, imap_user, theirs[0], other, theirs[1], mailbox="Processed")
    await append(dovecot, imap_user, theirs[2])
    assert await erase_mailbox_copies(imap_config, ANA) == 3
    assert len(await flags_in(dovecot, imap_user, "Processed")) == 1
    assert await flags_in(dovecot, imap_user, "INBOX") == []
    assert await erase_mailbox_copies(imap_config, ANA) == 0
    # `participants erase` does it where privacy.erase_mailbox_copies is on.
    await append(dovecot, imap_user, theirs[0])
    imap = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": dovecot.port,
        "security": "none",
        "username": imap_user.name,
        "password_env": "QA_TEST_IMAP_PASSWORD",
    }
    off = write_config(tmp_path / "off", database_url, imap=imap)
    assert (await privacy.erase_participant(engine, off, ANA)).mailbox is None
    on = write_config(
        tmp_path / "on", database_url, imap=imap, privacy={"erase_mailbox_copies": True}
    )
    assert (await privacy.erase_participant(engine, on, ANA)).mailbox == 1
