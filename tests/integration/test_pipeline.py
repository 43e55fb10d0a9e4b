"""The pipeline on SQLite and PostgreSQL: questions, replies, held and ignored mail, faults."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer import admin
from qa_mailer.classify.language import language_for
from qa_mailer.classify.roster import load_roster
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    InboundMessage,
    MessageState,
    OutboxKind,
    OutboxMail,
    Question,
    QuestionState,
    Thread,
)
from qa_mailer.db.claims import ClaimedMessage
from qa_mailer.db.engine import SessionFactory, session_factory
from qa_mailer.ingest.store import Envelope, MessageStore
from qa_mailer.offload import Offload
from qa_mailer.pipeline import PARSE_TIMEOUT, Outcome, Pipeline
from qa_mailer.sorting import Sorted, sort_in_helper, use_config
from qa_mailer.templates import Templates
from tests.helpers import EXPERT, QA, FakeClock, make_mail, registered, write_config


@dataclass
class Desk:
    config: Config
    engine: AsyncEngine
    clock: FakeClock
    pipeline: Pipeline
    store: MessageStore

    async def receive(
        self, raw: bytes, *, to: tuple[str, ...] = (QA,), sender: str | None = None
    ) -> Outcome:
        envelope = (
            Envelope(source="smtp", mail_from=sender, rcpt_tos=to)
            if sender
            else Envelope(source="imap")
        )
        stored = await self.store.store(raw, envelope)
        outcome = await self.pipeline.process(stored.id)
        assert outcome is not None
        return outcome

    async def outbox(self, kind: OutboxKind | None = None) -> list[EmailMessage]:
        async with session_factory(self.engine)() as session:
            query = select(OutboxMail.raw).order_by(OutboxMail.id)
            if kind is not None:
                query = query.where(OutboxMail.kind == kind)
            raws = list(await session.scalars(query))
        return [email.message_from_bytes(raw, policy=email.policy.default) for raw in raws]  # type: ignore[misc]

    async def count(self, model: type) -> int:
        async with session_factory(self.engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def questions(self) -> list[Question]:
        async with session_factory(self.engine)() as session:
            return list(await session.scalars(select(Question).order_by(Question.id)))


def plain(mail: EmailMessage) -> str:
    """The plain-text body of an outgoing mail, with its line ends as Python writes them."""
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


async def make_desk(config: Config, engine: AsyncEngine, clock: FakeClock) -> Desk:
    sessions = session_factory(engine)
    roster = load_roster(config.roster, config.countries)
    workers = await registered(sessions, clock)
    pipeline = Pipeline(config, sessions, roster, Templates(config.templates), clock, workers)
    return Desk(config, engine, clock, pipeline, MessageStore(sessions, clock, lambda: None))


@pytest_asyncio.fixture
async def desk(engine: AsyncEngine, tmp_path: Path, database_url: str) -> Desk:
    return await make_desk(write_config(tmp_path, database_url), engine, FakeClock())


def ask(
    sender: str = "Ana Horvat <ana@drvo.example.hr>",
    subject: str = "[VC2] Tko upravlja klasterom?",
    body: str = "Tko bi trebao voditi klaster?",
    **kwargs: object,
) -> bytes:
    return make_mail(sender=sender, subject=subject, body=body, **kwargs)  # type: ignore[arg-type]


def reply_to(
    route: EmailMessage, body: str, *, sender: str = EXPERT, via_plus: bool = True, **kwargs: object
) -> bytes:
    return make_mail(
        sender=sender,
        to=str(route["Reply-To"]) if via_plus else QA,
        subject=f"Re: {route['Subject']}",
        body=body,
        in_reply_to=str(route["Message-ID"]),
        references=str(route["Message-ID"]),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.asyncio
async def test_a_batch_reaches_the_database_as_one_insert_per_table(
    desk: Desk, database_url: str
) -> None:
    # Twelve questions, one batch: the outbox (the table with the most rows per batch) gets
    # each kind of mail in one call of the driver. On PostgreSQL that call is one statement
    # holding every row: asyncpg's executemany would send one execution per row, each a
    # statement of its own on the server (its executor started, its statement triggers fired).
    for n in range(12):
        await desk.store.store(ask(sender=f"p{n}@drvo.example.hr"), Envelope("imap"))
    calls: list[str] = []

    def seen(_c: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("INSERT INTO outbox"):
            calls.append(statement)

    event.listen(desk.engine.sync_engine, "before_cursor_execute", seen)
    try:
        outcomes = await desk.pipeline.process_pending()
    finally:
        event.remove(desk.engine.sync_engine, "before_cursor_execute", seen)
    assert [o.state for o in outcomes] == [MessageState.PROCESSED] * 12
    # The acknowledgements, then the expert copies: two calls of twelve rows each.
    assert len(calls) == 2, calls
    assert await desk.count(OutboxMail) == 24
    if database_url.startswith("postgresql"):
        assert [statement.count("), (") + 1 for statement in calls] == [12, 12], calls


@pytest.mark.asyncio
async def test_a_question_is_threaded_acknowledged_and_sent_to_the_expert(desk: Desk) -> None:
    raw = ask(message_id="<q1@drvo.example.hr>")
    outcome = await desk.receive(raw)
    assert (outcome.state, outcome.kind) == (MessageState.PROCESSED, "question")
    [question] = await desk.questions()
    assert question.state == QuestionState.NEW and question.body == "Tko bi trebao voditi klaster?"
    async with session_factory(desk.engine)() as session:
        thread = (await session.scalars(select(Thread))).one()
    assert (thread.session_no, thread.session_source, thread.country, thread.country_source) == (
        2,
        "subject-tag",
        "HR",
        "roster",
    )
    assert thread.participant_name == "Ana Horvat"
    [ack] = await desk.outbox(OutboxKind.ACK)
    assert ack["To"] == "ana@drvo.example.hr" and ack["In-Reply-To"] == "<q1@drvo.example.hr>"
    assert ack["Auto-Submitted"] == "auto-replied" and "Q-1" in ack["Subject"]
    [route] = await desk.outbox(OutboxKind.ROUTE)
    assert route["To"] == EXPERT and route["Subject"].startswith("[Q-1] [VC2] ")
    token = str(route["Reply-To"]).split("+r")[1].split("@")[0]
    assert len(token) == 20 and token not in str(route["Message-ID"])
    assert "[Q-1] Tko bi trebao voditi klaster?" in plain(route)


@pytest.mark.asyncio
async def test_the_experts_reply_reaches_the_participant_threaded(desk: Desk) -> None:
    # A reply matched by In-Reply-To alone is held unless a trusted host vouches for it:
    # test_answer_guards.py shows that case.
    await desk.receive(ask(message_id="<q1@drvo.example.hr>"))
    [route] = await desk.outbox(OutboxKind.ROUTE)
    desk.clock.advance(hours=5)
    body = (
        "The chamber should start it, the firms should lead it.\n\n"
        f"On Thu, 3 Dec 2026 at 18:30, {route['From']} wrote:\n> [Q-1] Tko bi trebao voditi klaster?\n"
    )
    outcome = await desk.receive(reply_to(route, body))
    assert (outcome.state, outcome.kind) == (MessageState.PROCESSED, "reply")
    [answer_mail] = await desk.outbox(OutboxKind.ANSWER)
    assert (
        answer_mail["To"] == "ana@drvo.example.hr"
        and answer_mail["In-Reply-To"] == "<q1@drvo.example.hr>"
    )
    text = plain(answer_mail)
    assert "The chamber should start it, the firms should lead it." in text
    assert "> Tko bi trebao voditi klaster?" in text and "On Thu" not in text
    [question] = await desk.questions()
    assert (
        question.state == QuestionState.ANSWERED
        and (question.answered_at - question.asked_at).total_seconds() == 5 * 3600
    )


@pytest.mark.asyncio
async def test_a_reply_from_a_stranger_is_held_until_an_organiser_approves(desk: Desk) -> None:
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    outcome = await desk.receive(
        reply_to(route, "Trust me, I am the expert.", sender="mallory@evil.example.org")
    )
    assert outcome.state == MessageState.HELD and "not from an expert" in (outcome.reason or "")
    assert await desk.outbox(OutboxKind.ANSWER) == []
    [held] = await admin.held_answers(desk.engine)
    assert held.body == "Trust me, I am the expert." and held.state == "held"
    await admin.decide_answers(desk.engine, desk.config, [held.id], approve=True)
    assert len(await desk.outbox(OutboxKind.ANSWER)) == 1
    async with session_factory(desk.engine)() as session:
        assert (
            await session.scalar(
                select(InboundMessage.state).where(InboundMessage.id == outcome.message_id)
            )
            == "processed"
        )


@pytest.mark.asyncio
async def test_a_failed_authentication_result_holds_even_the_experts_address(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(
        tmp_path, database_url, expert_check={"trusted_authserv_ids": ["mx.clusters.example.org"]}
    )
    desk = await make_desk(config, engine, FakeClock())
    await desk.receive(ask())
    [route] = await desk.outbox(OutboxKind.ROUTE)
    forged = reply_to(
        route,
        "Forged answer",
        headers={
            "Authentication-Results": "mx.clusters.example.org; dkim=none; spf=fail smtp.mailfrom=clusters.example.org;"
            " dmarc=fail (p=reject) header.from=clusters.example.org"
        },
    )
    assert (await desk.receive(forged)).state == MessageState.HELD
    genuine = reply_to(
        route,
        "Genuine answer",
        headers={
            "Authentication-Results": "mx.clusters.example.org; dkim=pass header.d=clusters.example.org;"
            " dmarc=pass header.from=clusters.example.org"
        },
    )
    assert (await desk.receive(genuine)).state == MessageState.PROCESSED


@pytest.mark.asyncio
async def test_unknown_tokens_and_expert_mail_without_a_question_are_held(desk: Desk) -> None:
    unknown = make_mail(
        sender=EXPERT,
        to="qa+r0123456789abcdef0123@clusters.example.org",
        subject="Re: x",
        body="hi",
    )
    assert (
        await desk.receive(unknown)
    ).reason == "the reply token matches no mail we sent to an expert"
    fresh = make_mail(sender=EXPERT, subject="Some thoughts", body="Dear all")
    assert (await desk.receive(fresh)).state == MessageState.HELD
    assert await desk.count(Question) == 0 and await desk.outbox() == []


@pytest.mark.asyncio
async def test_an_auto_reply_is_recorded_and_never_answered(desk: Desk) -> None:
    await desk.receive(ask())
    [ack] = await desk.outbox(OutboxKind.ACK)
    out_of_office = make_mail(
        sender="ana@drvo.example.hr",
        subject=f"Automatski odgovor: {ack['Subject']}",
        body="Na godišnjem sam.",
        in_reply_to=str(ack["Message-ID"]),
        headers={"Auto-Submitted": "auto-replied"},
    )
    outcome = await desk.receive(out_of_office)
    assert (outcome.state, outcome.kind) == (MessageState.IGNORED, "automatic")
    assert await desk.count(Question) == 1 and len(await desk.outbox()) == 2


@pytest.mark.asyncio
async def test_a_follow_up_joins_its_thread_and_reaches_the_expert_without_a_new_ack(
    desk: Desk,
) -> None:
    await desk.receive(ask(message_id="<q1@drvo.example.hr>"))
    [ack] = await desk.outbox(OutboxKind.ACK)
    follow = ask(
        subject=f"Re: {ack['Subject']}",
        body="And who pays for it?",
        in_reply_to=str(ack["Message-ID"]),
    )
    assert (await desk.receive(follow)).kind == "follow-up"
    by_subject = ask(subject="Re: Tko upravlja klasterom?", body="One more thing.")
    assert (await desk.receive(by_subject)).kind == "follow-up"
    first, second, third = await desk.questions()
    assert second.thread_id == first.thread_id == third.thread_id
    assert (second.follow_up_to, third.follow_up_to) == (first.id, second.id)
    assert (
        len(await desk.outbox(OutboxKind.ACK)) == 1
        and len(await desk.outbox(OutboxKind.ROUTE)) == 3
    )
    routes = await desk.outbox(OutboxKind.ROUTE)
    assert "This is a follow-up to Q-1." in plain(routes[1])


@pytest.mark.asyncio
async def test_someone_else_replying_in_a_thread_starts_their_own(desk: Desk) -> None:
    await desk.receive(ask())
    [ack] = await desk.outbox(OutboxKind.ACK)
    other = ask(
        sender="petar@mebeli.example.bg",
        subject=f"Re: {ack['Subject']}",
        body="Same question here",
        in_reply_to=str(ack["Message-ID"]),
    )
    assert (await desk.receive(other)).kind == "question"
    async with session_factory(desk.engine)() as session:
        threads = list(await session.scalars(select(Thread).order_by(Thread.id)))
    assert [(t.session_no, t.country) for t in threads] == [(2, "HR"), (2, "BG")]
    assert threads[1].session_source == "subject-tag"


@pytest.mark.asyncio
async def test_acknowledgements_are_rate_limited_per_sender(desk: Desk) -> None:
    for n in range(7):
        await desk.receive(ask(subject=f"Question {n}", body=f"Body {n}"))
    assert len(await desk.outbox(OutboxKind.ACK)) == 5
    assert len(await desk.outbox(OutboxKind.ROUTE)) == 7
    desk.clock.advance(hours=2)
    await desk.receive(ask(subject="Question after a pause", body="x"))
    assert len(await desk.outbox(OutboxKind.ACK)) == 6


@pytest.mark.asyncio
async def test_unparseable_mail_is_quarantined_and_can_be_put_back(desk: Desk) -> None:
    outcome = await desk.receive(b"\x00\x01 not mail at all")
    assert (
        outcome.state == MessageState.QUARANTINED
        and outcome.reason
        and "ParseError" in outcome.reason
    )
    [parked] = await admin.list_messages(desk.engine, MessageState.QUARANTINED)
    assert parked.id == outcome.message_id
    assert await admin.release_messages(
        desk.engine, [outcome.message_id], MessageState.QUARANTINED
    ) == [outcome.message_id]
    [again] = await desk.pipeline.process_pending()
    assert again.state == MessageState.QUARANTINED


@pytest.mark.asyncio
async def test_a_crash_mid_processing_leaves_nothing_half_done(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash_after_the_question_and_ack(*args: object) -> None:
        raise RuntimeError("the process died here")

    with monkeypatch.context() as patch:
        patch.setattr("qa_mailer.route.questions.dispatch", crash_after_the_question_and_ack)
        outcome = await desk.receive(ask())
    assert outcome.state == MessageState.QUARANTINED and "the process died here" in (
        outcome.reason or ""
    )
    assert (await desk.count(Question), await desk.count(Thread), await desk.count(OutboxMail)) == (
        0,
        0,
        0,
    )
    await admin.release_messages(desk.engine, None, MessageState.QUARANTINED)
    [done] = await desk.pipeline.process_pending()
    assert done.state == MessageState.PROCESSED
    assert (
        await desk.count(Question),
        len(await desk.outbox(OutboxKind.ACK)),
        len(await desk.outbox(OutboxKind.ROUTE)),
    ) == (1, 1, 1)


@pytest.mark.asyncio
async def test_country_unassigned_and_session_from_the_schedule(desk: Desk) -> None:
    # 3 December 2026, 12:30 UTC: before VC1 starts at 14:00, so VC1 is "the next one".
    await desk.receive(ask(sender="someone@gmail.example.com", subject="Clusters?", body="?"))
    async with session_factory(desk.engine)() as session:
        thread = (await session.scalars(select(Thread))).one()
    assert (thread.session_no, thread.session_source, thread.country) == (1, "schedule", None)


@pytest.mark.asyncio
async def test_the_question_text_drops_quoted_history(desk: Desk) -> None:
    body = "How do I join?\n\nOn Mon, 23 Nov 2026, Komora <info@komora.example.rs> wrote:\n> Program of the sessions\n"
    await desk.receive(ask(body=body))
    [question] = await desk.questions()
    assert question.body == "How do I join?"
    assert await desk.count(Answer) == 0


@pytest.mark.asyncio
async def test_a_message_that_fails_still_shows_who_sent_it_and_about_what(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> str:
        raise RuntimeError("a bug in trimming")

    monkeypatch.setattr("qa_mailer.sorting.question_text", broken)
    outcome = await desk.receive(
        ask(
            sender="=?utf-8?b?0JDQvdCw?= <Ana@Drvo.Example.HR>",
            subject="=?utf-8?q?Pitanje_=C4=8Dovjeka?=",
        )
    )
    assert outcome.state == MessageState.QUARANTINED
    [parked] = await admin.list_messages(desk.engine, MessageState.QUARANTINED)
    assert (parked.sender, parked.subject) == ("ana@drvo.example.hr", "Pitanje čovjeka")


def delivered(raw: bytes, *received: str) -> bytes:
    """The mail as a provider's mailbox holds it: Received headers on top, newest first."""
    return "".join(f"Received: {line}\r\n" for line in received).encode() + raw


@pytest.mark.asyncio
async def test_a_question_fetched_late_is_filed_under_the_session_it_arrived_in(
    desk: Desk,
) -> None:
    # The service was down from VC2 to after VC5: the backlog is fetched on 30 December.
    desk.clock.moment = datetime(2026, 12, 30, 9, 0, tzinfo=UTC)
    during_vc2 = "by mx.clusters.example.org; Thu, 10 Dec 2026 14:35:00 +0000"
    during_vc3 = "by mx.clusters.example.org; Thu, 17 Dec 2026 16:20:00 +0100"  # 15:20 UTC
    # A sender can write Received headers too, but only below the receiving server's own.
    forged = "from x by y; Thu, 03 Dec 2026 14:30:00 +0000"
    await desk.receive(delivered(ask(subject="Clusters?", body="One?"), during_vc2, forged))
    await desk.receive(delivered(ask(subject="Clusters again?", body="Two?"), during_vc3))
    # A date after the mail was fetched, or none, is no arrival time: the fetch time stands.
    await desk.receive(
        delivered(ask(subject="Clusters three?", body="Three?"), "by mx; Fri, 1 Jan 2027 0:0 +0000")
    )
    await desk.receive(delivered(ask(subject="Clusters four?", body="Four?"), "by mx; garbage"))
    async with session_factory(desk.engine)() as session:
        rows = (
            await session.execute(
                select(Thread.session_no, Thread.session_source, Question.asked_at)
                .join(Question, Question.thread_id == Thread.id)
                .order_by(Question.id)
            )
        ).all()
    assert [(number, rule) for number, rule, _ in rows] == [
        (2, "schedule"),
        (3, "schedule"),
        (5, "schedule"),
        (5, "schedule"),
    ]
    assert [asked.astimezone(UTC) for _, _, asked in rows] == [
        datetime(2026, 12, 10, 14, 35, tzinfo=UTC),
        datetime(2026, 12, 17, 15, 20, tzinfo=UTC),
        desk.clock.moment,
        desk.clock.moment,
    ]


# Questions whose language the sender's country can decide (Serbian Latin or Croatian, Serbian
# Cyrillic), and plainer ones, from senders the roster does not know.
LANGUAGE_CASES = [
    ("milan@firma.example.rs", "Kako da nađemo partnere?", "Gde možemo da nađemo partnere za izvoz nameštaja?"),
    ("ana@firma.example.rs", "Pitanje o klasteru", "Kako klaster pomaže malim tvrtkama?"),
    ("ivo@tvrtka.example.hr", "Pitanje o klasteru", "Kako klaster pomaže malim firmama?"),
    ("ivo2@tvrtka.example.hr", "Suradnja", "Tko bi trebao voditi suradnju s inozemnim partnerima?"),
    ("petar@firma.example.rs", "Извоз", "Како кластер помаже извозу намештаја?"),
    ("ivan@zavod.example.ru", "Экспорт", "Как кластер помогает малым производителям мебели?"),
    ("maria@firma.example.bg", "Износ", "Как клъстерът помага на малките производители на мебели?"),
    ("ayse@firma.example.com.tr", "İhracat", "Kümelenme küçük üreticilere nasıl yardım eder?"),
    ("john@firm.example.com", "Export", "How does the cluster help small furniture makers?"),
]  # fmt: skip


async def stage_with_a_helper(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> tuple[Pipeline, MessageStore, SessionFactory]:
    """A processing stage with one parsing helper, in batches of two, and its message store."""
    config = write_config(tmp_path, database_url, workers={"parse_processes": 1})
    sessions = session_factory(engine)
    clock = FakeClock()
    pipeline = Pipeline(
        config,
        sessions,
        load_roster(config.roster, config.countries),
        Templates(config.templates),
        clock,
        await registered(sessions, clock),
        batch=2,
        parse_processes=1,
    )
    return pipeline, MessageStore(sessions, clock, lambda: None), sessions


@pytest.mark.asyncio
async def test_with_parsing_helpers_every_claim_is_processed_once_as_without(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    # Batches of two: the messages take two claims (of three batches), the second claimed
    # while the helper parses the first. Each is processed once, in order, and its thread
    # gets the language the service's own detection gives with the sender's country.
    pipeline, store, sessions = await stage_with_a_helper(engine, tmp_path, database_url)
    stored = [
        (
            await store.store(
                make_mail(sender=sender, subject=f"[VC2] {subject}", body=body), Envelope("imap")
            )
        ).id
        for sender, subject, body in LANGUAGE_CASES
    ]
    await pipeline.start()
    try:
        assert pipeline.helper_pids(), "the parsing helper did not start"
        outcomes = await pipeline.process_pending()
        assert await pipeline.process_pending() == []
    finally:
        pipeline.close()
    assert [o.message_id for o in outcomes] == stored
    assert [o.state for o in outcomes] == [MessageState.PROCESSED] * len(LANGUAGE_CASES)
    async with sessions() as session:
        threads = {t.participant_email: t for t in await session.scalars(select(Thread))}
    seen = set()
    for sender, subject, body in LANGUAGE_CASES:
        thread = threads[sender]
        assert thread.language == language_for(f"{subject}\n{body}", thread.country, None), sender
        seen.add(thread.language)
    assert {"sr", "sr-Latn", "hr", "ru", "bg", "tr", "en"} <= seen


KILLS_THE_HELPER = b"X-Test-Kills-The-Helper: yes"


def sorts_or_dies(claimed: Sequence[ClaimedMessage]) -> list[Sorted]:
    """A parsing helper's work, except that it dies on a marked mail, as a crash of a parser
    written in C would end it."""
    if any(KILLS_THE_HELPER in message.raw for message in claimed):
        os._exit(3)
    return sort_in_helper(claimed)


@pytest.mark.asyncio
async def test_a_mail_that_kills_the_parsing_helper_is_quarantined_alone(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    # Several batches are at the helper at once (batches of two here, three at a time): when
    # it dies, the work of all of them is lost. Everything is done again in a new helper and
    # only the mail that killed it is quarantined; the stage keeps its helper for what follows.
    pipeline, store, sessions = await stage_with_a_helper(engine, tmp_path, database_url)
    pipeline._helpers = Offload(
        sorts_or_dies, 1, PARSE_TIMEOUT, initializer=use_config, initargs=(pipeline._config,)
    )
    stored = [
        (
            await store.store(
                ask(
                    sender=f"p{n}@drvo.example.hr",
                    headers={"X-Test-Kills-The-Helper": "yes"} if n == 2 else None,
                ),
                Envelope("imap"),
            )
        ).id
        for n in range(9)
    ]
    await pipeline.start()
    try:
        outcomes = await pipeline.process_pending()
        assert pipeline.helper_pids(), "the stage gave up its helper"
    finally:
        pipeline.close()
    assert [o.message_id for o in outcomes] == stored
    assert [o.state for o in outcomes] == [
        MessageState.QUARANTINED if n == 2 else MessageState.PROCESSED for n in range(9)
    ]
    async with sessions() as session:
        killer = await session.get(InboundMessage, stored[2])
        assert killer is not None
        assert killer.reason == "the parsing helper died on this message"
        assert await session.scalar(select(func.count()).select_from(Question)) == 8


@pytest.mark.asyncio
async def test_with_parsing_helpers_their_queue_is_topped_up_without_waiting_for_a_write(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    # On SQLite a claim takes the write lock, so a claim made while a batch is written
    # waits for the whole batch (200 ms and more in bench_process.py) and the helpers run out
    # of work meanwhile. There the stage claims after one write ends and before the next
    # begins; on PostgreSQL, where neither waits for the other, during the write.
    pipeline, store, _ = await stage_with_a_helper(engine, tmp_path, database_url)
    for n in range(14):
        await store.store(ask(sender=f"p{n}@drvo.example.hr"), Envelope("imap"))
    events: list[tuple[str, int]] = []
    claim, write = pipeline._claim, pipeline._write_batch

    async def claiming(count: int) -> list[ClaimedMessage]:
        events.append(("claim", count))
        claimed = await claim(count)
        events.append(("claimed", len(claimed)))
        return claimed

    async def writing(batch: list[Sorted]) -> list[Outcome]:
        events.append(("write", len(batch)))
        outcomes = await write(batch)
        events.append(("written", len(batch)))
        return outcomes

    pipeline._claim = claiming  # type: ignore[method-assign]
    pipeline._write_batch = writing  # type: ignore[method-assign]
    await pipeline.start()
    try:
        outcomes = await pipeline.process_pending()
    finally:
        pipeline.close()
    assert [o.state for o in outcomes] == [MessageState.PROCESSED] * 14
    kinds = [kind for kind, _ in events]
    assert kinds.count("write") == 7
    # A claim tops the queue up before each write while messages remain.
    starts = [i for i, kind in enumerate(kinds) if kind == "write"]
    for before, start in itertools.pairwise(starts[:5]):
        assert "claim" in kinds[before:start], events
    # The claims that ran while a write did: none on SQLite; on PostgreSQL, every top-up.
    beside, claiming_now, writing_now = 0, False, False
    for kind in kinds:
        claiming_now = kind == "claim" or (claiming_now and kind != "claimed")
        writing_now = kind == "write" or (writing_now and kind != "written")
        beside += claiming_now and writing_now and kind in ("claim", "write")
    if database_url.startswith("sqlite"):
        assert beside == 0, events
    else:
        assert beside >= 4, events
