"""The organisers are told by mail of held replies and quarantined messages, once each."""

from __future__ import annotations

import asyncio

import pytest

from qa_mailer import admin
from qa_mailer.db import MessageState, OutboxKind
from qa_mailer.db.engine import session_factory
from qa_mailer.digest.notices import OrganiserNotices
from qa_mailer.templates import Templates
from tests.helpers import EXPERT, ORGANISER
from tests.integration.test_pipeline import Desk, ask, desk, plain, reply_to

__all__ = ["desk"]  # the fixture, used by name


def notices(desk: Desk) -> OrganiserNotices:
    return OrganiserNotices(desk.config, session_factory(desk.engine), Templates(), desk.clock)


@pytest.mark.asyncio
async def test_a_held_reply_and_a_quarantined_message_reach_the_organisers_once(
    desk: Desk,
) -> None:
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    held = await desk.receive(
        reply_to(route, "Trust me, I am the expert.", sender="mallory@evil.example.org")
    )
    broken = await desk.receive(b"\x00\x01 not mail at all")
    assert (held.state, broken.state) == (MessageState.HELD, MessageState.QUARANTINED)
    assert await notices(desk).send_due() == [held.message_id, broken.message_id]
    assert await notices(desk).send_due() == []  # each message is told once
    [notice] = await desk.outbox(OutboxKind.NOTICE)
    assert notice["To"] == ORGANISER and EXPERT not in str(notice["To"])
    assert notice["Subject"] == (
        "Clusters Q&A: 2 messages wait for an organiser (1 held, 1 quarantined)"
    )
    assert notice["Auto-Submitted"] == "auto-generated"
    text = plain(notice)
    [answer] = await admin.held_answers(desk.engine)
    assert f"M-{held.message_id}, received" in text and "from mallory@evil.example.org" in text
    assert f"qa-mailer held approve A-{answer.id}" in text
    assert f"qa-mailer held reject A-{answer.id}" in text
    assert "not from an expert" in text
    assert f"qa-mailer quarantine release {broken.message_id}" in text and "ParseError" in text
    # The expert hears of the reply in their name at their own address, not what it said.
    [to_expert] = await desk.outbox(OutboxKind.HELD)
    assert to_expert["To"] == EXPERT and "mallory" not in str(to_expert["To"])
    assert to_expert["Subject"] == (
        "Held: a reply in your name came from another address [VC2] Q-1"
    )
    said = plain(to_expert)
    assert "came from mallory@evil.example.org" in said and "waits for an organiser" in said
    assert "Trust me" not in said


@pytest.mark.asyncio
async def test_notices_are_batched_at_most_one_per_period_and_race_free(desk: Desk) -> None:
    first = await desk.receive(b"\x00\x01 not mail at all")
    assert await notices(desk).send_due() == [first.message_id]
    desk.clock.advance(minutes=1)
    second = await desk.receive(b"\x00\x02 not mail either")
    third = await desk.receive(b"\x00\x03 nor this")
    assert await notices(desk).send_due() == []  # the last notice went a minute ago
    desk.clock.advance(minutes=15)
    # Two processes look at the same moment: one notice lists both messages.
    results = await asyncio.gather(notices(desk).send_due(), notices(desk).send_due())
    assert sorted(results) == [[], [second.message_id, third.message_id]]
    assert len(await desk.outbox(OutboxKind.NOTICE)) == 2
    # Released and quarantined again: that is news again.
    await admin.release_messages(desk.engine, [first.message_id], MessageState.QUARANTINED)
    [again] = await desk.pipeline.process_pending()
    assert again.state == MessageState.QUARANTINED
    desk.clock.advance(minutes=15)
    assert await notices(desk).send_due() == [first.message_id]


@pytest.mark.asyncio
async def test_a_reply_held_as_automatic_is_not_told_twice(desk: Desk) -> None:
    # The expert's out-of-office answer gets the held notice, with the organisers in copy.
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    away = await desk.receive(reply_to(route, "I am out of the office until Monday."))
    assert away.state == MessageState.HELD
    assert len(await desk.outbox(OutboxKind.HELD)) == 1
    assert await notices(desk).send_due() == []


@pytest.mark.asyncio
async def test_the_expert_hears_of_replies_from_other_addresses_at_most_three_an_hour(
    desk: Desk,
) -> None:
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    for n in range(5):
        held = await desk.receive(
            reply_to(route, f"Forgery number {n}", sender=f"forger{n}@evil.example.org")
        )
        assert held.state == MessageState.HELD
    told = await desk.outbox(OutboxKind.HELD)
    assert len(told) == 3
    # Only ever the expert's configured address; never a forger's.
    assert {str(m["To"]) for m in told} == {EXPERT}
    # The organisers' notice lists all five all the same.
    assert len(await notices(desk).send_due()) == 5
    desk.clock.advance(hours=1, seconds=1)
    await desk.receive(reply_to(route, "Forgery number 6", sender="forger6@evil.example.org"))
    assert len(await desk.outbox(OutboxKind.HELD)) == 4
