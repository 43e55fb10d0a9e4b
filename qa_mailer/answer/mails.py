"""The mail that takes an answer to its participant, threaded under their question."""

from __future__ import annotations

from qa_mailer.classify.threading import reply_subject
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import Answer, Question, Thread
from qa_mailer.route.mails import clean_subject, service_sender
from qa_mailer.send.compose import OutgoingMail, build_mail, new_message_id
from qa_mailer.templates import Templates


def answer_mail(
    config: Config,
    templates: Templates,
    clock: Clock,
    question: Question,
    thread: Thread,
    answer: Answer,
    original_message_id: str | None,
) -> OutgoingMail:
    """The answer, with the question quoted below it, as a reply to the participant's mail."""
    session = config.session(thread.session_no)
    rendered = templates.render_mail(
        "answer.txt",
        thread.language,
        participant_name=thread.participant_name,
        participant_email=thread.participant_email,
        country=thread.country,
        service_name=config.service_name,
        ref=question.ref,
        session=session,
        subject=clean_subject(question.subject),
        answer=answer.body,
        question=question.body,
        asked_at=question.asked_at,
    )
    return build_mail(
        sender=service_sender(config),
        to=[thread.participant_email],
        subject=rendered.subject or reply_subject(question.subject, question.ref),
        text=rendered.text,
        message_id=new_message_id("answer", config.address.domain),
        date=clock.now(),
        reply_to=config.address.address,
        in_reply_to=original_message_id,
        references=[original_message_id] if original_message_id else [],
        headers={"X-Loop": config.address.address, "X-QA-Question": question.ref},
    )
