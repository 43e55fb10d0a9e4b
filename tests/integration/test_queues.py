"""The organisers' queues: a held answer in full, ignored mail with reasons, the outbox, retry now."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer import admin
from qa_mailer.db import OutboxKind, OutboxState
from qa_mailer.organise import queues
from tests.helpers import FakeClock, make_mail, write_config
from tests.integration.test_pipeline import ask, make_desk, reply_to
from tests.integration.test_sender import relay, sender
from tests.servers.smtp_sink import SmtpSink

LONG_ANSWER = " ".join(["Prvo: komora pokreće klaster."] * 8) + "\nDrugo: tvrtke ga vode."


@pytest.mark.asyncio
async def test_a_held_answer_is_shown_whole_with_its_question(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await make_desk(write_config(tmp_path, database_url), engine, FakeClock())
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    await desk.receive(reply_to(route, LONG_ANSWER, sender="mallory@evil.example.org"))
    [held] = await admin.held_answers(engine)
    shown = await queues.held_answer(engine, held.id)
    assert shown.answer.body == LONG_ANSWER
    assert shown.question.body == "Tko bi trebao voditi klaster?"
    assert shown.thread.participant_email == "ana@drvo.example.hr"
    assert "not from an expert" in (shown.answer.reason or "")
    with pytest.raises(admin.NotFound, match="no held answer A-99"):
        await queues.held_answer(engine, 99)


@pytest.mark.asyncio
async def test_ignored_mail_is_listed_with_its_reason(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await make_desk(write_config(tmp_path, database_url), engine, FakeClock())
    await desk.receive(
        make_mail(
            sender="ana@drvo.example.hr",
            subject="Automatic reply: [VC2] Pitanje",
            body="I am away.",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    # The README's own test mail has no From header at all.
    await desk.receive(b"To: qa@clusters.example.org\r\nSubject: test\r\n\r\nhello\r\n")
    ignored = await queues.ignored_messages(engine)
    assert [(m.sender, m.subject) for m in ignored] == [
        ("ana@drvo.example.hr", "Automatic reply: [VC2] Pitanje"),
        (None, "test"),
    ]
    assert all(m.reason for m in ignored)
    assert "Auto-Submitted" in ignored[0].reason


@pytest.mark.asyncio
async def test_the_outbox_shows_errors_and_a_retry_sends_now(
    engine: AsyncEngine, tmp_path: Path, database_url: str, smtp_sink: SmtpSink
) -> None:
    config = write_config(
        tmp_path,
        database_url,
        outgoing={"transport": "smtp"},
        smtp={"host": "127.0.0.1", "port": smtp_sink.port, "security": "none"},
    )
    clock = FakeClock()
    desk = await make_desk(config, engine, clock)
    await desk.receive(ask())
    smtp_sink.refuse = "451 4.3.0 try later"
    await (await sender(engine, relay(smtp_sink.port), clock)).deliver_due()
    rows = await queues.outbox_mails(engine, state=OutboxState.QUEUED)
    assert [row.key for row in rows] == ["ack:Q-1", "route:D-1"]
    assert all("451" in (row.last_error or "") and row.attempts == 1 for row in rows)
    assert all(row.next_attempt_at > clock.now() for row in rows)
    smtp_sink.refuse = None
    retried, report = await queues.retry_outbox(engine, config, [rows[0].id])
    assert retried == [rows[0].id] and "1 sent" in report
    assert [r.rcpt_tos for r in smtp_sink.received] == [["ana@drvo.example.hr"]]
    # A failed mail goes back to the queue too, to the recipients that refused it.
    smtp_sink.refuse = "554 5.7.1 rejected"
    clock.advance(hours=1)
    await (await sender(engine, relay(smtp_sink.port), clock)).deliver_due()
    [failed] = await queues.outbox_mails(engine, state=OutboxState.FAILED)
    assert failed.key == "route:D-1" and "554" in (failed.last_error or "")
    smtp_sink.refuse = None
    retried, report = await queues.retry_outbox(engine, config, None)
    assert retried == [failed.id] and "1 sent" in report
    assert len(smtp_sink.received) == 2
    with pytest.raises(admin.NotFound, match="not queued or failed: mail 99"):
        await queues.retry_outbox(engine, config, [99])
    assert await queues.outbox_mails(engine, state=OutboxState.QUEUED) == []
    assert len(await queues.outbox_mails(engine)) == 2
