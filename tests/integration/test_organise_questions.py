"""Organisers sort the questions: list, show, move, close, and roster changes applied."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer import admin
from qa_mailer.app import Service
from qa_mailer.classify.roster import load_roster
from qa_mailer.classify.similar import RECENT_QUESTIONS
from qa_mailer.db import OutboxKind, OutboxMail, Question, QuestionState, Role, Thread
from qa_mailer.db.engine import session_factory
from qa_mailer.digest.build import build_digest
from qa_mailer.ingest.store import Envelope
from qa_mailer.organise import questions as organise
from qa_mailer.organise.questions import QuestionFilter
from qa_mailer.route.questions import latest_open_questions
from tests.bulk import fill_session
from tests.helpers import ROSTER, FakeClock, make_mail, write_config
from tests.integration.test_pipeline import Desk, ask, make_desk, plain, reply_to

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STRANGER = "Deniz Kaya <deniz@firma.example.com>"


@pytest_asyncio.fixture
async def desk(engine: AsyncEngine, tmp_path: Path, database_url: str) -> Desk:
    return await make_desk(write_config(tmp_path, database_url), engine, FakeClock())


async def three_questions(desk: Desk) -> None:
    await desk.receive(ask(message_id="<q1@drvo.example.hr>"))
    await desk.receive(
        make_mail(
            sender="Petar Ivanov <petar@mebeli.example.bg>",
            subject="[VC1] Кой финансира клъстера?",
            body="Кой финансира клъстера в началото?",
        )
    )
    # Not on the roster, and a .com address: no country.
    await desk.receive(
        make_mail(
            sender=STRANGER, subject="[VC2] Ihracat", body="Klaster ihracata nasil yardim eder?"
        )
    )


@pytest.mark.asyncio
async def test_questions_are_listed_with_filters(desk: Desk) -> None:
    await three_questions(desk)
    every = await organise.list_questions(desk.engine, QuestionFilter())
    assert [q.ref for q in every] == ["Q-1", "Q-2", "Q-3"]
    assert [(q.session_no, q.country) for q in every] == [(2, "HR"), (1, "BG"), (2, None)]

    async def refs(**kwargs: object) -> list[str]:
        found = await organise.list_questions(desk.engine, QuestionFilter(**kwargs))  # type: ignore[arg-type]
        return [q.ref for q in found]

    assert await refs(session=2) == ["Q-1", "Q-3"]
    assert await refs(country="hr") == ["Q-1"]
    assert await refs(country="unassigned") == ["Q-3"]
    assert await refs(participant="PETAR@") == ["Q-2"]
    assert await refs(participant="Kaya") == ["Q-3"]
    # Text search looks in the subject and the question, whatever the script and case.
    assert await refs(text="КЛЪСТЕРА") == ["Q-2"]
    assert await refs(text="klaster") == ["Q-1", "Q-3"]
    assert await refs(state="new", session=1) == ["Q-2"]
    assert await refs(state="answered") == []


@pytest.mark.asyncio
async def test_a_question_is_shown_with_its_thread_answers_and_mails(desk: Desk) -> None:
    await desk.receive(ask(message_id="<q1@drvo.example.hr>"))
    [route] = await desk.outbox(OutboxKind.ROUTE)
    desk.clock.advance(hours=2)
    await desk.receive(reply_to(route, "The chamber should start it."))
    [answer_mail] = await desk.outbox(OutboxKind.ANSWER)
    await desk.receive(
        make_mail(
            sender="Ana Horvat <ana@drvo.example.hr>",
            subject=f"Re: {answer_mail['Subject']}",
            body="A tko ga financira?",
            in_reply_to=str(answer_mail["Message-ID"]),
        )
    )
    detail = await organise.show_question(desk.engine, 1)
    assert detail.question.ref == "Q-1" and detail.question.state == QuestionState.ANSWERED
    assert (detail.thread.session_no, detail.thread.country) == (2, "HR")
    assert [q.ref for q in detail.thread_questions] == ["Q-1", "Q-2"]
    assert [a.body for a in detail.answers] == ["The chamber should start it."]
    assert [(m.kind, m.recipients, m.state) for m in detail.mails] == [
        ("ack", ["ana@drvo.example.hr"], "queued"),
        ("route", ["expert@clusters.example.org"], "queued"),
        ("answer", ["ana@drvo.example.hr"], "queued"),
    ]
    follow_up = await organise.show_question(desk.engine, 2)
    assert follow_up.question.follow_up_to == 1
    with pytest.raises(admin.NotFound, match="no question Q-9"):
        await organise.show_question(desk.engine, 9)


@pytest.mark.asyncio
async def test_a_question_moves_to_another_session_and_country(desk: Desk) -> None:
    await three_questions(desk)
    moved = await organise.move_question(desk.engine, desk.config, 3, session=4, country="TR")
    assert moved.refs == ["Q-3"] and (moved.session_no, moved.country) == (4, "TR")
    async with session_factory(desk.engine)() as tx:
        thread = await tx.scalar(
            select(Thread).where(Thread.participant_email == "deniz@firma.example.com")
        )
        assert thread is not None
        assert (thread.session_no, thread.session_source) == (4, "organiser")
        assert (thread.country, thread.country_source) == ("TR", "organiser")
        roster = load_roster(desk.config.roster, desk.config.countries)
        digest4 = await build_digest(tx, desk.config, roster, 4, desk.clock.now())
        digest2 = await build_digest(tx, desk.config, roster, 2, desk.clock.now())
    [turkey] = [c for c in digest4.countries if c.code == "TR"]
    assert [q.ref for q in turkey.questions] == ["Q-3"]
    assert digest2.asked == 1
    # A new question of session 4 is compared with it, one of session 2 no longer is.
    async with session_factory(desk.engine)() as tx:
        latest = await latest_open_questions(tx, {2, 4})
    assert [q for q, _ in latest[4]] == [3] and [q for q, _ in latest[2]] == [1]
    # Only the country: the session stays.
    moved = await organise.move_question(desk.engine, desk.config, 1, session=None, country="RS")
    assert (moved.session_no, moved.country) == (2, "RS")
    with pytest.raises(admin.NotFound, match="no session 9"):
        await organise.move_question(desk.engine, desk.config, 1, session=9, country=None)
    with pytest.raises(admin.NotFound, match="no country XX"):
        await organise.move_question(desk.engine, desk.config, 1, session=None, country="XX")


@pytest.mark.asyncio
async def test_a_thank_you_follow_up_is_closed_and_no_longer_pending(desk: Desk) -> None:
    await desk.receive(ask(message_id="<q1@drvo.example.hr>"))
    [route] = await desk.outbox(OutboxKind.ROUTE)
    desk.clock.advance(hours=2)
    await desk.receive(reply_to(route, "The chamber should start it."))
    [answer_mail] = await desk.outbox(OutboxKind.ANSWER)
    await desk.receive(
        make_mail(
            sender="Ana Horvat <ana@drvo.example.hr>",
            subject=f"Re: {answer_mail['Subject']}",
            body="Спасибо большое!",
            in_reply_to=str(answer_mail["Message-ID"]),
        )
    )
    async with session_factory(desk.engine)() as tx:
        mails_before = len(list(await tx.scalars(select(OutboxMail.id))))
    closed = await organise.close_question(desk.engine, 2, "a thank-you, no question")
    assert (
        closed.state == QuestionState.CLOSED and closed.closed_reason == "a thank-you, no question"
    )
    async with session_factory(desk.engine)() as tx:
        # Nothing is sent for a closed question.
        assert len(list(await tx.scalars(select(OutboxMail.id)))) == mails_before
        roster = load_roster(desk.config.roster, desk.config.countries)
        digest = await build_digest(tx, desk.config, roster, 2, desk.clock.now())
    assert (digest.asked, digest.answered, digest.pending) == (2, 1, 0)
    [q2] = [q for c in digest.countries for q in c.questions if q.ref == "Q-2"]
    assert "closed" in q2.state_label and "a thank-you" in q2.state_label
    assert [
        q.ref for q in await organise.list_questions(desk.engine, QuestionFilter(state="closed"))
    ] == ["Q-2"]
    with pytest.raises(admin.NotFound, match="Q-2 is already closed"):
        await organise.close_question(desk.engine, 2, "again")
    with pytest.raises(admin.NotFound, match="Q-1 is already answered"):
        await organise.close_question(desk.engine, 1, "answered")


@pytest.mark.asyncio
async def test_roster_changes_sort_the_unassigned_questions(desk: Desk) -> None:
    await three_questions(desk)
    assert await organise.apply_roster(desk.engine, desk.config) == []
    assert desk.config.roster is not None
    desk.config.roster.write_text(
        ROSTER.replace("city\n", "city,language\n", 1)
        + "deniz@firma.example.com,Deniz Kaya,TR,Firma,Izmir,tr\n"
        # A participant already assigned keeps the country their question was sorted into.
        "ana@drvo.example.hr,Ana Horvat,RS,Drvo,Zagreb\n",
        encoding="utf-8",
    )
    sorted_ = await organise.apply_roster(desk.engine, desk.config)
    assert [(s.email, s.country, s.refs) for s in sorted_] == [
        ("deniz@firma.example.com", "TR", ["Q-3"])
    ]
    async with session_factory(desk.engine)() as tx:
        rows = (
            await tx.execute(
                select(
                    Thread.participant_email, Thread.country, Thread.country_source, Thread.language
                ).order_by(Thread.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("ana@drvo.example.hr", "HR", "roster", "hr"),
        ("petar@mebeli.example.bg", "BG", "roster", "bg"),
        ("deniz@firma.example.com", "TR", "roster", "tr"),
    ]
    assert await organise.apply_roster(desk.engine, desk.config) == []


@pytest.mark.asyncio
async def test_a_running_service_follows_the_roster_file(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url)
    clock = FakeClock()
    service = Service(config, engine, clock=clock, roles=[Role.PROCESS])
    await service.workers.register(["test"])

    async def take(raw: bytes) -> None:
        await service.store.store(raw, Envelope(source="imap"))
        await service.pipeline.process_pending()

    await take(make_mail(sender=STRANGER, subject="[VC2] Ihracat", body="Ihracat nasil?"))
    assert not await service.roster_watcher.check()
    assert config.roster is not None
    # A line that cannot be read keeps the roster in use.
    config.roster.write_text(ROSTER + "not-an-address,X,TR\n", encoding="utf-8")
    assert not await service.roster_watcher.check()
    config.roster.write_text(
        ROSTER
        + "deniz@firma.example.com,Deniz Kaya,TR,Firma,Izmir\n"
        + "emre@firma.example.com,Emre Aydin,TR,Firma,Izmir\n",
        encoding="utf-8",
    )
    assert await service.roster_watcher.check()
    # The question already stored is sorted, and a new participant is known at once.
    await take(make_mail(sender="emre@firma.example.com", subject="[VC2] Soru", body="Nasil?"))
    async with session_factory(engine)() as tx:
        rows = (
            await tx.execute(select(Thread.participant_email, Thread.country).order_by(Thread.id))
        ).all()
    assert [tuple(r) for r in rows] == [
        ("deniz@firma.example.com", "TR"),
        ("emre@firma.example.com", "TR"),
    ]
    await service.workers.stop()


ANSWER = "The chamber should start it."


async def answer_mails(desk: Desk) -> list[tuple[str, str, bool]]:
    """(recipient, In-Reply-To, whether it has the answer) of every answer mail so far."""
    return [
        (str(m["To"]), str(m["In-Reply-To"]), ANSWER in plain(m))
        for m in await desk.outbox(OutboxKind.ANSWER)
    ]


@pytest.mark.asyncio
async def test_a_merged_question_gets_the_one_answer_in_its_own_thread(desk: Desk) -> None:
    await desk.receive(ask(message_id="<q1@drvo.example.hr>"))
    await desk.receive(
        make_mail(
            sender="Milan Jovanovic <milan@gmail.example.com>",
            subject="[VC2] Ko vodi klaster?",
            body="Ko treba da vodi klaster?",
            message_id="<q2@gmail.example.com>",
        )
    )
    # Ana sends her question again, as a new mail: the same asker gets one answer.
    await desk.receive(ask(subject="[VC2] Pitanje o klasteru", message_id="<q3@drvo.example.hr>"))
    merged = await organise.merge_questions(desk.engine, desk.config, 2, into=1)
    assert merged.ref == "Q-2" and merged.state == QuestionState.MERGED
    assert merged.merged_into == 1
    await organise.merge_questions(desk.engine, desk.config, 3, into=1)
    [route, *_] = await desk.outbox(OutboxKind.ROUTE)
    desk.clock.advance(hours=1)
    await desk.receive(reply_to(route, "The chamber should start it."))
    assert sorted(await answer_mails(desk)) == [
        ("ana@drvo.example.hr", "<q1@drvo.example.hr>", True),
        ("milan@gmail.example.com", "<q2@gmail.example.com>", True),
    ]
    states = {q.ref: q.state for q in await desk.questions()}
    assert states == {"Q-1": "answered", "Q-2": "answered", "Q-3": "answered"}
    # A question merged after the answer gets it at once.
    await desk.receive(
        make_mail(
            sender="Ayse Yilmaz <ayse@mobilya.example.com.tr>",
            subject="[VC2] Kim yonetmeli?",
            body="Kumeyi kim yonetmeli?",
            message_id="<q4@mobilya.example.com.tr>",
        )
    )
    await organise.merge_questions(desk.engine, desk.config, 4, into=1)
    assert ("ayse@mobilya.example.com.tr", "<q4@mobilya.example.com.tr>", True) in (
        await answer_mails(desk)
    )
    assert len(await answer_mails(desk)) == 3
    async with session_factory(desk.engine)() as tx:
        roster = load_roster(desk.config.roster, desk.config.countries)
        digest = await build_digest(tx, desk.config, roster, 2, desk.clock.now())
    assert (digest.asked, digest.answered, digest.pending) == (4, 4, 0)
    labels = {q.ref: q.state_label for c in digest.countries for q in c.questions}
    assert "merged into Q-1" in labels["Q-2"]


@pytest.mark.asyncio
async def test_merging_refuses_what_cannot_be_merged(desk: Desk) -> None:
    await three_questions(desk)
    with pytest.raises(admin.NotFound, match="Q-1 cannot be merged into itself"):
        await organise.merge_questions(desk.engine, desk.config, 1, into=1)
    await organise.merge_questions(desk.engine, desk.config, 3, into=1)
    with pytest.raises(admin.NotFound, match="Q-3 is merged into Q-1: merge into Q-1"):
        await organise.merge_questions(desk.engine, desk.config, 2, into=3)
    with pytest.raises(admin.NotFound, match="Q-3 is already merged"):
        await organise.merge_questions(desk.engine, desk.config, 3, into=2)
    with pytest.raises(admin.NotFound, match="no question Q-9"):
        await organise.merge_questions(desk.engine, desk.config, 9, into=1)
    # Closing a question closes those merged into it: they wait for no answer either.
    await organise.close_question(desk.engine, 1, "answered in the session")
    states = {q.ref: (q.state, q.closed_reason) for q in await desk.questions()}
    assert states["Q-3"] == ("closed", "answered in the session")


@pytest.mark.asyncio
async def test_in_batch_mode_the_expert_gets_a_merged_question_once(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url, programme={"expert_mail": "batch"})
    desk = await make_desk(config, engine, FakeClock())
    await three_questions(desk)
    await organise.merge_questions(desk.engine, desk.config, 3, into=1)
    await admin.send_batches(desk.engine, desk.config, 2)
    [route] = [m for m in await desk.outbox(OutboxKind.ROUTE) if "[VC2]" in str(m["Subject"])]
    text = plain(route)
    assert "[Q-1]" in text and "[Q-3]" not in text
    assert "Also asked as Q-3 by Deniz Kaya" in text


def _distinct_question(n: int) -> str:
    # Words no other question shares, so no two of these resemble each other.
    rng = random.Random(n)
    return (
        " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(7)) for _ in range(8))
        + "?"
    )


@pytest.mark.asyncio
async def test_a_question_is_compared_with_its_own_sessions_latest_open_questions_only(
    desk: Desk,
) -> None:
    first = "Who should lead the cluster in its first two years of work?"
    second = "How is the membership fee of a cluster decided among its members?"
    mails = [("VC2", first), ("VC2", second)]
    mails += [("VC2", _distinct_question(n)) for n in range(RECENT_QUESTIONS - 2)]
    # Newer than all of them, in another session: they must not push VC2's out.
    mails += [("VC3", _distinct_question(100 + n)) for n in range(10)]
    for n, (session, text) in enumerate(mails):
        await desk.receive(
            make_mail(sender=f"p{n}@firm{n}.example.hr", subject=f"[{session}] Q {n}", body=text)
        )
    # One batch with questions of both sessions: each is compared with its own session's.
    # The second question is the 30th newest open one of VC2: a resend of it is compared. The
    # first is then the 31st: too old to be compared.
    for n, (session, text) in enumerate(
        [("VC3", _distinct_question(200)), ("VC2", f"{second}!"), ("VC2", f"{first}!")]
    ):
        await desk.store.store(
            make_mail(sender=f"late{n}@firm.example.hr", subject=f"[{session}] Again", body=text),
            Envelope(source="imap"),
        )
    assert len(await desk.pipeline.process_pending()) == 3
    *_, resend_of_second, resend_of_first = await desk.questions()
    assert resend_of_second.similar_to == 2
    assert resend_of_first.similar_to is None


@pytest.mark.asyncio
async def test_a_question_like_an_open_one_is_marked_for_the_expert_and_the_digest(
    desk: Desk,
) -> None:
    await desk.receive(ask(message_id="<q1@drvo.example.hr>"))
    # Milan asks the same, with a greeting and a signature; Petar asks something else; the
    # same question in another session is not compared.
    await desk.receive(
        make_mail(
            sender="Milan Jovanovic <milan@gmail.example.com>",
            subject="[VC2] Pitanje",
            body="Pozdrav,\n\nTko bi trebao voditi klaster?\n\nMilan",
        )
    )
    await desk.receive(
        make_mail(
            sender="Petar Ivanov <petar@mebeli.example.bg>",
            subject="[VC2] Финансиране",
            body="Кой финансира клъстера в началото?",
        )
    )
    await desk.receive(
        ask(subject="[VC3] Tko upravlja klasterom?", message_id="<q4@drvo.example.hr>")
    )
    similar = {q.ref: q.similar_to for q in await desk.questions()}
    assert similar == {"Q-1": None, "Q-2": 1, "Q-3": None, "Q-4": None}
    routes = {str(m["X-QA-Question"]): plain(m) for m in await desk.outbox(OutboxKind.ROUTE)}
    assert "It resembles Q-1, asked earlier in this session" in routes["Q-2"]
    assert "resembles" not in routes["Q-1"] and "resembles" not in routes["Q-3"]
    report, _ = await admin.make_digest(desk.engine, desk.config, 2, send=False)
    assert "resembles Q-1: `qa-mailer questions merge Q-2 into Q-1`" in report.text
    # Once merged, the digest no longer suggests it.
    await organise.merge_questions(desk.engine, desk.config, 2, into=1)
    report, _ = await admin.make_digest(desk.engine, desk.config, 2, send=False)
    assert "questions merge Q-2" not in report.text


async def _work_of_reading_open_questions(
    engine: AsyncEngine, sessions: set[int]
) -> tuple[dict[int, list[tuple[int, str]]], int]:
    """What a batch reads of the open questions to compare with, and the work it took.

    The work is counted by the database, so the figure does not depend on how busy the
    machine is: PostgreSQL's rows of ``questions`` read in the transaction, SQLite's virtual
    machine steps (in hundreds).
    """
    async with session_factory(engine).begin() as tx:
        if engine.dialect.name == "postgresql":
            found = await latest_open_questions(tx, sessions)
            read = await tx.scalar(
                sql(
                    "SELECT seq_tup_read + coalesce(idx_tup_fetch, 0) "
                    "FROM pg_stat_xact_user_tables WHERE relname = 'questions'"
                )
            )
            return found, int(read or 0)
        connection = await (await tx.connection()).get_raw_connection()
        steps = 0

        def count() -> int:
            nonlocal steps
            steps += 1
            return 0

        sqlite = connection.driver_connection
        await sqlite.set_progress_handler(count, 100)
        try:
            found = await latest_open_questions(tx, sessions)
        finally:
            await sqlite.set_progress_handler(None, 100)
        return found, steps


async def _ask_in_turns(engine: AsyncEngine, sessions: set[int], rounds: int, each: int) -> None:
    """Open questions of every session, asked in turns, as during a session's own days."""
    for turn in range(rounds):
        for number in sorted(sessions):
            await fill_session(engine, number, each, NOW, answered_share=0, seed=turn)


async def _latest_by_session(engine: AsyncEngine, sessions: set[int]) -> dict[int, list[int]]:
    """Each session's latest open questions, worked out here from every question."""
    async with session_factory(engine)() as tx:
        rows = (
            await tx.execute(select(Thread.session_no, Question.id).join(Question.thread))
        ).all()
    return {
        n: sorted((q for s, q in rows if s == n), reverse=True)[:RECENT_QUESTIONS] for n in sessions
    }


@pytest.mark.asyncio
async def test_each_sessions_latest_open_questions_are_read_newest_first(
    engine: AsyncEngine,
) -> None:
    sessions = {1, 2, 3, 4, 5}
    for each in (8, 40):
        await _ask_in_turns(engine, sessions, 5, each)
        found, _ = await _work_of_reading_open_questions(engine, sessions)
        assert {n: [question_id for question_id, _ in found[n]] for n in sessions} == (
            await _latest_by_session(engine, sessions)
        )
    # Only some of the sessions.
    found, _ = await _work_of_reading_open_questions(engine, {2, 4})
    assert set(found) == {2, 4}


@pytest.mark.asyncio
async def test_reading_the_open_questions_to_compare_with_does_not_grow_with_their_number(
    engine: AsyncEngine,
) -> None:
    sessions = {1, 2, 3, 4, 5}

    async def analyse() -> None:
        if engine.dialect.name == "postgresql":
            async with engine.begin() as connection:
                await connection.execute(sql("ANALYZE"))

    await _ask_in_turns(engine, sessions, 13, 40)
    await analyse()
    _, work_with_fewer = await _work_of_reading_open_questions(engine, sessions)
    await _ask_in_turns(engine, sessions, 13, 40)
    # As in a database whose statistics PostgreSQL has not gathered since it grew, and after.
    _, work_before_analysis = await _work_of_reading_open_questions(engine, sessions)
    await analyse()
    _, work_with_more = await _work_of_reading_open_questions(engine, sessions)
    if engine.dialect.name == "postgresql":
        # Depending on its statistics, PostgreSQL reads each session's latest from the index
        # or from the end of the primary key, and the second reads the other sessions'
        # questions asked since: either way a number of rows that does not grow with the open
        # questions. Ranking them read about half of them.
        assert work_before_analysis < 5200 / 3, work_before_analysis
        assert work_with_more < 5200 / 3, work_with_more
    else:
        # 5,200 open questions instead of 2,600: the same work, give or take.
        assert work_with_more < 1.5 * work_with_fewer, (work_with_fewer, work_with_more)
