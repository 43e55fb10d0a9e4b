"""Every mail rendered once, in every language, before the service starts.

A template that cannot render (a variable it does not get, a syntax error, a filter that
fails) would otherwise surface at the first question and fail every mail of its kind. The
mails are built here by the same functions the service builds them with, from sample rows
that hold every field a template may show, so a template checked here renders for real
questions too. The first problem stops start-up with its file and line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from qa_mailer.answer.held_notice import held_notice_mail, private_reply_mail
from qa_mailer.answer.mails import answer_mail
from qa_mailer.answer.outcome import ReplyOutcome
from qa_mailer.answer.receipt import receipt_mail
from qa_mailer.classify.incoming import Incoming
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    AnswerState,
    Dispatch,
    MessageState,
    Question,
    QuestionState,
    Thread,
)
from qa_mailer.digest.alerts import Alert, alert_mail
from qa_mailer.digest.build import CountryDigest, Digest, DigestQuestion
from qa_mailer.digest.deliver import render_digest
from qa_mailer.digest.listing import question_list_csv
from qa_mailer.digest.notices import HeldAnswer, WaitingMessage, notice_mail
from qa_mailer.digest.programme import OpenQuestion, Programme, bars, render_programme, tally
from qa_mailer.organise.commands import CommandOutcome, command_receipt_mail
from qa_mailer.parse import parse_mail
from qa_mailer.route.mails import MergedView, acknowledgement, expert_mail
from qa_mailer.templates import RENDER_ERRORS, TemplateProblem, Templates, describe


def check_templates(config: Config, templates: Templates, clock: Clock) -> None:
    """Render every mail in every language templates exist in; raise TemplateProblem if one fails."""
    strict = Templates(templates.override, templates.timezone, fallback=False)
    for language in templates.languages():
        # Every mail in this language: the expert's and the organisers' too.
        in_language = replace(
            config,
            organiser_language=language,
            sessions=tuple(replace(s, expert_language=language) for s in config.sessions),
        )
        _check_language(in_language, strict, clock, language)


def _check_language(config: Config, templates: Templates, clock: Clock, language: str) -> None:
    session = config.sessions[0]
    now = clock.now()
    thread = Thread(
        id=1,
        session_no=session.number,
        session_source="subject-tag",
        country=config.countries[0].code if config.countries else None,
        country_source="roster",
        participant_email="participant@example.org",
        participant_name="Participant",
        subject_key="sample",
        created_at=now,
        language=language,
    )
    follow_up = Question(
        id=2,
        thread_id=1,
        message_id=2,
        session_no=session.number,
        follow_up_to=1,
        subject="Re: [VC1] Sample question",
        body="A follow-up.",
        state=QuestionState.WITH_EXPERT,
        asked_at=now,
        attachments=[{"filename": "a.pdf", "content_type": "application/pdf", "size": 900}],
    )
    question = Question(
        id=1,
        thread_id=1,
        message_id=1,
        session_no=session.number,
        subject="[VC1] Sample question",
        body="How does a cluster start?",
        state=QuestionState.WITH_EXPERT,
        asked_at=now - timedelta(hours=2),
        attachments=[],
    )
    for row in (question, follow_up):
        row.thread = thread
    dispatch = Dispatch(
        id=1,
        token="0" * 20,
        route_key="0" * 20,
        session_no=session.number,
        experts=",".join(session.experts),
        created_at=now,
    )
    dispatch.questions = [question, follow_up]
    answer = Answer(
        id=1,
        question_id=1,
        message_id=3,
        expert_address=session.experts[0],
        body="The chamber starts it.",
        state=AnswerState.PUBLISHED,
        created_at=now,
    )
    answer.question = question
    held = Answer(
        id=2,
        question_id=2,
        message_id=3,
        expert_address=session.experts[0],
        body="Later.",
        state=AnswerState.HELD,
        reason="sample reason",
        created_at=now,
    )
    held.question = follow_up
    outcome = ReplyOutcome(
        published=[answer],
        held=[held],
        already_published=[question],
        already_held=[follow_up],
        unanswered=[follow_up],
        unmatched=["Kind regards"],
        hold_reason="sample reason",
    )
    incoming = Incoming(
        mail=parse_mail(
            f"From: {session.experts[0]}\r\nSubject: Re: sample\r\n"
            "Message-ID: <sample@example.org>\r\n\r\nAnswer.\r\n".encode()
        ),
        source="smtp",
        envelope_from=None,
        envelope_to=(),
        received_at=now,
    )
    checks: dict[str, Callable[[], object]] = {
        "ack.txt": lambda: acknowledgement(
            config, templates, clock, question, thread, "<q@example.org>"
        ),
        "to_expert.txt": lambda: (
            expert_mail(config, templates, clock, dispatch, [(question, thread)]),
            expert_mail(
                config,
                templates,
                clock,
                dispatch,
                [(question, thread), (follow_up, thread)],
                {question.id: [MergedView("Q-3", "Ayşe Yılmaz")]},
            ),
        ),
        "answer.txt": lambda: answer_mail(
            config, templates, clock, question, thread, answer, "<q@example.org>"
        ),
        "receipt.txt": lambda: (
            receipt_mail(config, templates, clock, dispatch, incoming, outcome),
            receipt_mail(config, templates, clock, dispatch, incoming, ReplyOutcome()),
        ),
        "held.txt": lambda: held_notice_mail(config, templates, clock, dispatch, incoming, outcome),
        "held_private.txt": lambda: private_reply_mail(
            config, templates, clock, dispatch, incoming, list(session.experts)
        ),
        "notice.txt": lambda: (
            notice_mail(config, templates, clock, _sample_waiting()),
            notice_mail(config, templates, clock, _sample_waiting(), "0" * 20),
        ),
        "alert.txt": lambda: [
            alert_mail(config, templates, clock, Alert(cause, "the mailbox", "login refused"))
            for cause in ("imap-login", "oauth2-grant")
        ],
        "command_receipt.txt": lambda: [
            command_receipt_mail(config, templates, clock, incoming, done)
            for done in (
                CommandOutcome([("A-7", "published: sent to the participant")]),
                CommandOutcome([], hold_reason="organiser command: not from an organiser"),
                CommandOutcome([], ignore_reason="organiser command: no command in the reply"),
            )
        ],
        "programme.txt and programme.html": lambda: render_programme(
            templates, _sample_programme(config, question), language
        ),
        # Whole, and with its lists cut to one question so the attached list is rendered too.
        "digest.txt and digest.html": lambda: (
            render_digest(templates, _sample_digest(config, question), language),
            render_digest(templates, replace(_sample_digest(config, question), limit=1), language),
        ),
        "digest_columns.txt": lambda: question_list_csv(
            templates, _sample_digest(config, question), language
        ),
    }
    for name, build in checks.items():
        try:
            build()
        except RENDER_ERRORS as exc:
            # Which file it was: the override's, or the shipped one.
            first = name.split(" ")[0]
            raise TemplateProblem(
                f"{templates.source_of(first, language)} ({language}) cannot be rendered: "
                f"{describe(exc)}"
            ) from exc


def _sample_programme(config: Config, question: Question) -> Programme:
    digest = _sample_digest(config, question)
    tallies = [tally(c.code, c.name, list(c.questions)) for c in digest.countries]
    return Programme(
        service_name=config.service_name,
        generated_at=digest.generated_at,
        timezone=digest.timezone,
        total=tally("", "", list(digest.questions)),
        sessions=(tally(digest.session.code, digest.session.title, list(digest.questions)),),
        countries=bars(tallies),
        open=tuple(
            OpenQuestion(digest.session.code, "BG", q) for q in digest.questions if not q.answered
        ),
    )


def _sample_waiting() -> list[WaitingMessage]:
    held = WaitingMessage(
        "M-3",
        3,
        MessageState.HELD,
        "someone@example.org",
        "Re: sample",
        "sample reason",
        "2026-12-03 12:00",
        (HeldAnswer("A-2", "Q-2", "sample reason"),),
    )
    return [
        held,
        replace(held, ref="M-4", number=4, answers=()),
        replace(held, ref="M-5", number=5, state=MessageState.QUARANTINED, answers=()),
    ]


def _sample_digest(config: Config, question: Question) -> Digest:
    sample = DigestQuestion(
        ref=question.ref,
        state=QuestionState.ANSWERED,
        state_label="answered",
        participant="Participant",
        email="participant@example.org",
        organisation="Organisation",
        subject=question.subject,
        text=question.body,
        answers=("The chamber starts it.",),
        held_answers=1,
        asked_at="2026-12-03 10:00",
        waited_seconds=3600.0,
        follow_up_to=None,
        changed_at=question.asked_at,
        asked=question.asked_at,
        similar_to="Q-1",
    )
    # One question of each kind: still waiting, answered since the last digest, answered before.
    waiting = replace(sample, state=QuestionState.WITH_EXPERT, state_label="with the expert")
    earlier = replace(
        sample, changed=False, bounced=("participant@example.org (answer, permanent)",)
    )
    countries = tuple(
        CountryDigest(country.code, country.name, (waiting, sample, earlier) if index == 0 else ())
        for index, country in enumerate(config.countries)
    )
    return Digest(
        session=config.sessions[0],
        generated_at="2026-12-03 12:00",
        timezone=str(config.digest.timezone.key),
        countries=countries,
        since="2026-12-02 08:00",
        closing=True,
    )
