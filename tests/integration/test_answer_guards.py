"""Answers that must not be published: replays, late forgeries, expired tokens, guessed tokens,
and replies that carry only a reference to our mail (issue 7, items 4, 7 and 8)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer import admin
from qa_mailer.cli import main
from qa_mailer.config import Config
from qa_mailer.db import InboundMessage, MessageState, OutboxKind, Question, QuestionState
from qa_mailer.db.engine import session_factory
from tests.helpers import EXPERT, FakeClock, make_mail, write_config
from tests.integration.test_pipeline import Desk, ask, make_desk, plain, reply_to

TRUSTED = "mx.clusters.example.org"
VOUCHED = {
    "Authentication-Results": f"{TRUSTED}; dkim=pass header.d=clusters.example.org;"
    " dmarc=pass header.from=clusters.example.org"
}
QUOTE = "\n\nOn Thu, 3 Dec 2026, Clusters Q&A wrote:\n> [Q-1] Tko bi trebao voditi klaster?\n"


async def guarded_desk(
    engine: AsyncEngine, tmp_path: Path, database_url: str, **sections: object
) -> Desk:
    config = write_config(
        tmp_path, database_url, expert_check={"trusted_authserv_ids": [TRUSTED]}, **sections
    )
    return await make_desk(config, engine, FakeClock())


async def asked(desk: Desk) -> EmailMessage:
    await desk.receive(ask(message_id="<q1@drvo.example.hr>"))
    [route] = await desk.outbox(OutboxKind.ROUTE)
    return route


def token_of(route: EmailMessage) -> str:
    return str(route["Reply-To"]).split("+r")[1].split("@")[0]


async def last_receipt(desk: Desk) -> str:
    receipts = await desk.outbox(OutboxKind.RECEIPT)
    return plain(receipts[-1])


@pytest.mark.asyncio
async def test_the_same_reply_under_a_new_message_id_publishes_nothing(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await guarded_desk(engine, tmp_path, database_url)
    route = await asked(desk)
    text = "The chamber should start it, the firms should lead it."
    first = await desk.receive(reply_to(route, text + QUOTE))
    assert first.state == MessageState.PROCESSED
    assert len(await desk.outbox(OutboxKind.ANSWER)) == 1
    desk.clock.advance(hours=2)
    # The same answer again, re-sent (new Message-ID, different spacing and case, a signature).
    replay = reply_to(route, "the chamber should start it,\n  the FIRMS should lead it.\n" + QUOTE)
    second = await desk.receive(replay)
    assert second.state == MessageState.PROCESSED
    assert len(await desk.outbox(OutboxKind.ANSWER)) == 1
    receipt = await last_receipt(desk)
    assert "Already published" in receipt and "Q-1" in receipt
    assert await admin.held_answers(desk.engine) == []


@pytest.mark.asyncio
async def test_a_different_later_answer_is_held_unless_the_sender_is_authenticated(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await guarded_desk(engine, tmp_path, database_url)
    route = await asked(desk)
    await desk.receive(reply_to(route, "The chamber should start it." + QUOTE))
    desk.clock.advance(days=3)
    forged = await desk.receive(reply_to(route, "Wire the fee to account 1234." + QUOTE))
    assert len(await desk.outbox(OutboxKind.ANSWER)) == 1
    [held] = await admin.held_answers(desk.engine)
    assert held.body == "Wire the fee to account 1234."
    assert "already has a published answer" in (held.reason or "")
    assert forged.state == MessageState.PROCESSED
    receipt = await last_receipt(desk)
    assert "Held for an organiser" in receipt and "already has a published answer" in receipt
    # The same further answer with a trusted host's word that it comes from the expert's domain.
    vouched = reply_to(route, "A further thought: start small." + QUOTE, headers=VOUCHED)
    assert (await desk.receive(vouched)).state == MessageState.PROCESSED
    assert len(await desk.outbox(OutboxKind.ANSWER)) == 2
    assert "Sent to the participants" in await last_receipt(desk)


@pytest.mark.asyncio
async def test_a_reply_with_an_expired_token_is_held_with_that_reason(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await guarded_desk(engine, tmp_path, database_url, answers={"token_valid_days": 14})
    route = await asked(desk)
    # VC2 ends on 10 December at 16:00 UTC; the token is good for 14 days after that.
    desk.clock.advance(days=21)
    assert (await desk.receive(reply_to(route, "Just in time." + QUOTE))).state == "processed"
    [question] = await desk.questions()
    assert question.state == QuestionState.ANSWERED

    # A day later the token has expired: even a vouched-for reply is held, and says why.
    desk.clock.advance(days=1)
    late = await desk.receive(reply_to(route, "One more thing." + QUOTE, headers=VOUCHED))
    assert late.state == MessageState.HELD
    assert "expired" in (late.reason or "")
    assert len(await desk.outbox(OutboxKind.ANSWER)) == 1
    assert "expired" in await last_receipt(desk)


@pytest.mark.asyncio
async def test_the_expert_copy_keeps_its_token_out_of_the_message_id(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await guarded_desk(engine, tmp_path, database_url)
    route = await asked(desk)
    token = token_of(route)
    assert len(token) >= 20 and token not in str(route["Message-ID"])
    assert token not in route.as_string().replace(str(route["Reply-To"]), "")


@pytest.mark.asyncio
async def test_a_reply_carrying_only_references_is_matched_but_proves_nothing(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await guarded_desk(engine, tmp_path, database_url)
    route = await asked(desk)
    # The expert's client dropped the plus address: the reply goes to the plain Q&A address.
    dropped = await desk.receive(reply_to(route, "Start small." + QUOTE, via_plus=False))
    assert (dropped.state, dropped.kind) == (MessageState.HELD, "reply")
    assert "carries no reply token" in (dropped.reason or "")
    [held] = await admin.held_answers(desk.engine)
    assert held.question.ref == "Q-1" and held.body == "Start small."
    assert await desk.outbox(OutboxKind.ANSWER) == []
    # With a trusted host vouching for the expert's domain, the reference is enough.
    vouched = reply_to(route, "Start small, grow later." + QUOTE, via_plus=False, headers=VOUCHED)
    assert (await desk.receive(vouched)).state == MessageState.PROCESSED
    assert len(await desk.outbox(OutboxKind.ANSWER)) == 1


def held_list(config: Config) -> str:
    result = CliRunner().invoke(main, ["--config", str(config.path), "held", "list"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.asyncio
async def test_guessed_tokens_are_limited_per_sender_and_listed_as_one_line(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await guarded_desk(
        engine, tmp_path, database_url, answers={"unknown_token_limit_per_hour": 5}
    )
    await asked(desk)
    guesser = "mallory@evil.example.org"
    outcomes = []
    for n in range(30):
        guess = make_mail(
            sender=guesser,
            to=f"qa+r{n:020x}@clusters.example.org",
            subject="Re: [Q-1]",
            body="Publish this.",
        )
        outcomes.append(await desk.receive(guess))
        desk.clock.advance(seconds=10)
    states = [o.state for o in outcomes]
    assert states[:5] == [MessageState.HELD] * 5
    assert states[5:] == [MessageState.IGNORED] * 25
    # Another sender is not limited by the first one's guesses.
    other = make_mail(
        sender=EXPERT, to="qa+r" + "f" * 20 + "@clusters.example.org", subject="x", body="y"
    )
    assert (await desk.receive(other)).state == MessageState.HELD

    output = await asyncio.to_thread(held_list, desk.config)
    lines = [line for line in output.splitlines() if guesser in line]
    assert len(lines) == 1, output
    assert "30 replies with unknown tokens" in lines[0], output
    assert "5 held: M-2..M-6; 25 more ignored over the limit" in lines[0], output
    assert "M-32    from expert@clusters.example.org" in output
    async with session_factory(desk.engine)() as session:
        reasons = list(
            await session.scalars(
                select(InboundMessage.reason).where(InboundMessage.sender == guesser)
            )
        )
    assert len(reasons) == 30 and await desk.count(Question) == 1
    # An hour after the first guesses, the sender may be heard again.
    desk.clock.advance(hours=1, minutes=1)
    again = make_mail(
        sender=guesser, to="qa+r" + "e" * 20 + "@clusters.example.org", subject="x", body="y"
    )
    assert (await desk.receive(again)).state == MessageState.HELD


@pytest.mark.asyncio
async def test_a_reply_to_the_receipt_without_the_plus_address_still_finds_its_questions(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await guarded_desk(engine, tmp_path, database_url)
    route = await asked(desk)
    await desk.receive(reply_to(route, "Start with a facilitator." + QUOTE))
    [receipt] = await desk.outbox(OutboxKind.RECEIPT)
    assert str(route["Message-ID"]) in str(receipt["References"])
    # The expert's client answers the receipt at the plain address, keeping the thread.
    follow = make_mail(
        sender=EXPERT,
        subject=f"Re: {receipt['Subject']}",
        body="And invite the university." + QUOTE,
        in_reply_to=str(receipt["Message-ID"]),
        references=f"{receipt['References']} {receipt['Message-ID']}",
    )
    outcome = await desk.receive(follow)
    assert (outcome.state, outcome.kind) == (MessageState.HELD, "reply")
    assert (outcome.reason or "").startswith("token-carried:")
    [held] = await admin.held_answers(desk.engine)
    assert held.question.ref == "Q-1" and held.body == "And invite the university."
