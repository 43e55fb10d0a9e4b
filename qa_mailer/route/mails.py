"""The mails a new question causes: the participant's acknowledgement and the expert's copy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qa_mailer.answer.tokens import reply_address, route_message_id
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import Dispatch, NewDispatch, NewQuestion, NewThread, Question, Thread
from qa_mailer.send.compose import OutgoingMail, build_mail, new_message_id
from qa_mailer.templates import Templates

# RFC 3834 and the de-facto headers that stop other auto-responders answering ours.
AUTOMATIC_HEADERS = {
    "Auto-Submitted": "auto-replied",
    "X-Auto-Response-Suppress": "All",
    "Precedence": "auto_reply",
}


@dataclass(frozen=True)
class QuestionView:
    """A question as a template shows it."""

    ref: str
    participant: str
    email: str
    country: str
    subject: str
    text: str
    follow_up_to: str | None


def service_sender(config: Config, name: str | None = None) -> tuple[str, str]:
    """The From (display name, address) of every mail the service sends."""
    return name or config.service_name, config.address.address


def country_name(config: Config, code: str | None) -> str:
    for country in config.countries:
        if country.code == code:
            return country.name
    return "country not yet known"


def question_view(
    config: Config, question: Question | NewQuestion, thread: Thread | NewThread
) -> QuestionView:
    return QuestionView(
        ref=question.ref,
        participant=thread.participant_name,
        email=thread.participant_email,
        country=country_name(config, thread.country),
        subject=question.subject,
        text=question.body,
        follow_up_to=f"Q-{question.follow_up_to}" if question.follow_up_to else None,
    )


def acknowledgement(
    config: Config,
    templates: Templates,
    clock: Clock,
    question: Question | NewQuestion,
    thread: Thread | NewThread,
    original_message_id: str | None,
) -> OutgoingMail:
    """The automatic acknowledgement, threaded under the participant's mail."""
    session = config.session(thread.session_no)
    text = templates.render(
        "ack.txt",
        participant_name=thread.participant_name,
        service_name=config.service_name,
        ref=question.ref,
        session=session,
        subject=question.subject,
    )
    return build_mail(
        sender=service_sender(config),
        to=[thread.participant_email],
        subject=f"Re: {question.subject} [{question.ref}]",
        text=text,
        message_id=new_message_id("ack", config.address.domain),
        date=clock.now(),
        in_reply_to=original_message_id,
        references=[original_message_id] if original_message_id else [],
        headers={
            **AUTOMATIC_HEADERS,
            "X-Loop": config.address.address,
            "X-QA-Question": question.ref,
        },
    )


def expert_mail(
    config: Config,
    templates: Templates,
    clock: Clock,
    dispatch: Dispatch | NewDispatch,
    questions: Sequence[tuple[Question | NewQuestion, Thread | NewThread]],
) -> OutgoingMail:
    """The mail that puts questions before the expert; its reply token is in the Reply-To only."""
    session = config.session(dispatch.session_no)
    views = [question_view(config, q, t) for q, t in questions]
    text = templates.render("to_expert.txt", session=session, question=views[0], questions=views)
    refs = " ".join(f"[{view.ref}]" for view in views)
    if len(views) == 1:
        subject = f"{refs} [{session.code}] {views[0].subject}"
    else:
        subject = f"[{session.code}] {len(views)} questions: {refs}"
    return build_mail(
        sender=service_sender(config, f"{config.service_name} {session.code}"),
        to=dispatch.experts.split(","),
        subject=subject,
        text=text,
        message_id=route_message_id(dispatch.route_key, config),
        date=clock.now(),
        reply_to=reply_address(dispatch.token, config),
        headers={
            "X-Loop": config.address.address,
            "X-QA-Question": ", ".join(v.ref for v in views),
        },
    )
