"""Batch mode and the expert's receipt: one mail with several questions, one reply answering them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import OutboxKind, QuestionState
from qa_mailer.db.engine import session_factory
from qa_mailer.route.batch import BatchDispatcher
from qa_mailer.templates import Templates
from tests.helpers import EXPERT, FakeClock, make_mail, write_config
from tests.integration.test_pipeline import Desk, make_desk, plain, reply_to

QUESTIONS = [
    ("Ana Horvat <ana@drvo.example.hr>", "Who should lead a new cluster?"),
    ("Petar Ivanov <petar@mebeli.example.bg>", "How do competitors learn to trust each other?"),
    ("Ivan <ivan@zavod.example.ru>", "What role do universities play?"),
]


async def batch_desk(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> tuple[Desk, BatchDispatcher]:
    config = write_config(
        tmp_path, database_url, programme={"expert_mail": "batch", "batch_minutes": 60}
    )
    desk = await make_desk(config, engine, FakeClock())
    for sender, text in QUESTIONS:
        await desk.receive(make_mail(sender=sender, subject="[VC1] Question", body=text))
        desk.clock.advance(minutes=5)
    return desk, BatchDispatcher(config, session_factory(engine), Templates(), desk.clock)


@pytest.mark.asyncio
async def test_questions_wait_for_their_batch_then_go_in_one_mail(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk, batches = await batch_desk(engine, tmp_path, database_url)
    assert len(await desk.outbox(OutboxKind.ACK)) == 3
    assert await desk.outbox(OutboxKind.ROUTE) == []
    assert await batches.send_due() == []  # the oldest has waited 15 minutes, not 60
    desk.clock.advance(minutes=50)
    [sent] = await batches.send_due()
    assert len(sent.questions) == 3
    [route] = await desk.outbox(OutboxKind.ROUTE)
    assert route["Subject"] == "[VC1] 3 questions: [Q-1] [Q-2] [Q-3]"
    text = plain(route)
    assert "[Q-1] Ana Horvat (Croatia):\nWho should lead a new cluster?" in text
    assert "[Q-3] Ivan (Russia):\nWhat role do universities play?" in text
    assert await batches.send_due(now=True) == []  # nothing left waiting


@pytest.mark.asyncio
async def test_one_reply_answers_three_questions_each_participant_gets_theirs(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk, batches = await batch_desk(engine, tmp_path, database_url)
    await batches.send_due(now=True)
    [route] = await desk.outbox(OutboxKind.ROUTE)
    body = (
        "Dear colleagues, my answers are below.\n\n"
        f"On Thu, 3 Dec 2026 at 15:00, {route['From']} wrote:\n"
        '> Session VC1 "Social environment": 3 questions.\n'
        "> Write each answer below its question; questions you leave unanswered stay open.\n>\n"
        "> [Q-1] Ana Horvat (Croatia):\n> Who should lead a new cluster?\n\n"
        "A neutral facilitator first, then the firms themselves.\n\n"
        "> [Q-2] Petar Ivanov (Bulgaria):\n> How do competitors learn to trust each other?\n\n"
        "Through small joint projects that none could do alone.\n\n"
        "> [Q-3] Ivan (Russia):\n> What role do universities play?\n\n"
        "Best regards,\nProf. Expert\n"
    )
    await desk.receive(reply_to(route, body, sender=EXPERT))
    answers = await desk.outbox(OutboxKind.ANSWER)
    by_participant = {str(m["To"]): plain(m) for m in answers}  # type: ignore[union-attr]
    assert set(by_participant) == {"ana@drvo.example.hr", "petar@mebeli.example.bg"}
    assert (
        "A neutral facilitator first, then the firms themselves."
        in by_participant["ana@drvo.example.hr"]
    )
    assert "Through small joint projects" not in by_participant["ana@drvo.example.hr"]
    assert (
        "Through small joint projects that none could do alone."
        in by_participant["petar@mebeli.example.bg"]
    )
    assert "Prof. Expert" not in "".join(by_participant.values())
    states = [q.state for q in await desk.questions()]
    assert states == [QuestionState.ANSWERED, QuestionState.ANSWERED, QuestionState.NEW]

    [receipt] = await desk.outbox(OutboxKind.RECEIPT)
    assert receipt["To"] == EXPERT and receipt["Subject"] == "Receipt: 2 answered, 1 open [VC1]"
    assert receipt["Reply-To"] == route["Reply-To"] and receipt["Auto-Submitted"] == "auto-replied"
    receipt_text = plain(receipt)
    assert (
        "  Q-1  Ana Horvat (Croatia)" in receipt_text
        and "  Q-2  Petar Ivanov (Bulgaria)" in receipt_text
    )
    assert "[Q-3] Ivan (Russia):\nWhat role do universities play?" in receipt_text

    # Replying to the receipt answers the question still open.
    follow = reply_to(
        receipt,
        "> [Q-3] Ivan (Russia):\n> What role do universities play?\n\nThey train the people.",
    )
    await desk.receive(follow)
    ivan = [m for m in await desk.outbox(OutboxKind.ANSWER) if m["To"] == "ivan@zavod.example.ru"]
    assert len(ivan) == 1 and "They train the people." in plain(ivan[0])
    second_receipt = (await desk.outbox(OutboxKind.RECEIPT))[-1]
    assert "Every question of that mail now has an answer." in plain(second_receipt)


@pytest.mark.asyncio
async def test_a_stranger_gets_no_receipt(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk, batches = await batch_desk(engine, tmp_path, database_url)
    await batches.send_due(now=True)
    [route] = await desk.outbox(OutboxKind.ROUTE)
    await desk.receive(
        reply_to(route, "> [Q-1] Ana\n> Who?\n\nMe.", sender="mallory@evil.example.org")
    )
    assert (
        await desk.outbox(OutboxKind.RECEIPT) == [] and await desk.outbox(OutboxKind.ANSWER) == []
    )
