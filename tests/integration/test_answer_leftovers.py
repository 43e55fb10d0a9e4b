"""An answer that still carries mail history is held, not sent (issue 9, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer import admin
from qa_mailer.db import MessageState, OutboxKind, QuestionState
from tests.helpers import FakeClock, write_config
from tests.integration.test_pipeline import Desk, ask, make_desk, plain, reply_to

# The expert's client wrote an attribution the trimming rules cannot be sure of (no time, no
# address, no ">" under it), so the parse keeps it, and the old question under it, in the answer.
BODY = (
    "The chamber should start it, the firms should lead it.\n\n"
    "On 3 December 2026 the QA service wrote:\n"
    "Tko bi trebao voditi klaster?\n"
)


@pytest_asyncio.fixture
async def desk(engine: AsyncEngine, tmp_path: Path, database_url: str) -> Desk:
    return await make_desk(write_config(tmp_path, database_url), engine, FakeClock())


@pytest.mark.asyncio
async def test_an_answer_with_a_quote_header_is_held_and_the_expert_told(desk: Desk) -> None:
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    outcome = await desk.receive(reply_to(route, BODY))
    assert outcome.state == MessageState.PROCESSED
    assert await desk.outbox(OutboxKind.ANSWER) == []
    [question] = await desk.questions()
    assert question.state != QuestionState.ANSWERED

    [held] = await admin.held_answers(desk.engine)
    assert held.state == "held"
    assert "On 3 December 2026 the QA service wrote:" in (held.reason or "")

    [receipt] = await desk.outbox(OutboxKind.RECEIPT)
    text = plain(receipt)
    assert "Not sent yet" in text and "Q-1" in text
    assert "On 3 December 2026 the QA service wrote:" in text

    # The expert may answer again by replying to the receipt, which quotes the question.
    follow = reply_to(
        receipt,
        "> [Q-1] Ana Horvat (Croatia):\n> Tko bi trebao voditi klaster?\n\n"
        "The chamber should start it.",
    )
    await desk.receive(follow)
    [answer] = await desk.outbox(OutboxKind.ANSWER)
    assert "The chamber should start it." in plain(answer) and "wrote:" not in plain(answer)


@pytest.mark.asyncio
async def test_an_organiser_may_send_a_held_answer_as_it_is(desk: Desk) -> None:
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    await desk.receive(reply_to(route, BODY))
    [held] = await admin.held_answers(desk.engine)
    # An organiser who has looked at it may send it as it is.
    await admin.decide_answers(desk.engine, desk.config, [held.id], approve=True)
    [answer] = await desk.outbox(OutboxKind.ANSWER)
    assert "The chamber should start it" in plain(answer)


@pytest.mark.asyncio
async def test_a_clean_answer_is_sent_at_once(desk: Desk) -> None:
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    await desk.receive(reply_to(route, "The chamber should start it, the firms should lead it."))
    assert len(await desk.outbox(OutboxKind.ANSWER)) == 1
    assert await admin.held_answers(desk.engine) == []
    [receipt] = await desk.outbox(OutboxKind.RECEIPT)
    assert "Not sent yet" not in plain(receipt)
