"""The mails a new question causes: the participant's acknowledgement and the expert's copy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from qa_mailer.answer.tokens import reply_address, route_message_id
from qa_mailer.classify.threading import reply_subject, strip_subject
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
    asked_at: datetime
    language: str  # the participant's language, as a code ("ru", "sr-Latn")
    attachments: tuple[AttachmentView, ...] = ()
    # Questions an organiser merged into this one: the answer goes to them too.
    merged: tuple[MergedView, ...] = ()
    # An open question of the session this one closely resembles ("Q-17"), if any.
    similar_to: str | None = None


@dataclass(frozen=True)
class MergedView:
    """A question merged into another, as the expert's copy of that one names it."""

    ref: str
    participant: str


@dataclass(frozen=True)
class AttachmentView:
    """A participant's attachment as the expert's copy lists it."""

    filename: str
    content_type: str
    size: str  # for people: "12 KB", "9.1 MB"


def service_sender(config: Config, name: str | None = None) -> tuple[str, str]:
    """The From (display name, address) of every mail the service sends."""
    return name or config.service_name, config.address.address


def country_name(config: Config, code: str | None) -> str:
    for country in config.countries:
        if country.code == code:
            return country.name
    return "country not yet known"


def question_view(
    config: Config,
    question: Question | NewQuestion,
    thread: Thread | NewThread,
    merged: Sequence[MergedView] = (),
) -> QuestionView:
    return QuestionView(
        ref=question.ref,
        participant=thread.participant_name,
        email=thread.participant_email,
        country=country_name(config, thread.country),
        subject=clean_subject(question.subject),
        text=question.body,
        follow_up_to=f"Q-{question.follow_up_to}" if question.follow_up_to else None,
        asked_at=question.asked_at,
        language=thread.language,
        attachments=tuple(
            AttachmentView(
                filename=str(item.get("filename") or "(no name)"),
                content_type=str(item.get("content_type") or "application/octet-stream"),
                size=file_size(int(item.get("size") or 0)),
            )
            for item in question.attachments or ()
        ),
        merged=tuple(merged),
        similar_to=f"Q-{question.similar_to}" if question.similar_to else None,
    )


def clean_subject(subject: str) -> str:
    """A participant's subject as our mails show it: no reply prefixes, no tags of ours.

    "Re: [VC2] Re: Pitanje [Q-11]" becomes "Pitanje"; the mail that shows it adds its own
    tags once ("[Q-11] [VC2] Pitanje"), and its own "Re:" where it is a reply.
    """
    return strip_subject(subject) or subject.strip() or "(no subject)"


def file_size(size: int) -> str:
    """A size for people: "850 B", "12 KB", "9.1 MB"."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size // 1024} KB"
    return f"{size / (1024 * 1024):.1f} MB"


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
    rendered = templates.render_mail(
        "ack.txt",
        thread.language,
        participant_name=thread.participant_name,
        participant_email=thread.participant_email,
        country=thread.country,
        service_name=config.service_name,
        ref=question.ref,
        session=session,
        subject=clean_subject(question.subject),
        asked_at=question.asked_at,
    )
    return build_mail(
        sender=service_sender(config),
        to=[thread.participant_email],
        subject=rendered.subject or reply_subject(question.subject, question.ref),
        text=rendered.text,
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
    merged: Mapping[int, Sequence[MergedView]] | None = None,
) -> OutgoingMail:
    """The mail that puts questions before the expert; its reply token is in the Reply-To only.

    ``merged`` names, by question id, the questions merged into each one.
    """
    session = config.session(dispatch.session_no)
    views = [question_view(config, q, t, (merged or {}).get(q.id or 0, ())) for q, t in questions]
    rendered = templates.render_mail(
        "to_expert.txt",
        session.expert_language,
        session=session,
        question=views[0],
        questions=views,
        service_name=config.service_name,
    )
    refs = " ".join(f"[{view.ref}]" for view in views)
    return build_mail(
        sender=service_sender(config, f"{config.service_name} {session.code}"),
        to=dispatch.experts.split(","),
        subject=rendered.subject or f"{refs} [{session.code}] {views[0].subject}",
        text=rendered.text,
        message_id=route_message_id(dispatch.route_key, config),
        date=clock.now(),
        reply_to=reply_address(dispatch.token, config),
        headers={
            "X-Loop": config.address.address,
            "X-QA-Question": ", ".join(v.ref for v in views),
        },
    )
