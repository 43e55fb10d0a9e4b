"""The expert's receipt: what their reply answered, what stays open, what was not used.

It carries the same reply token as the mail it answers, and quotes the open questions with
their [Q-n] anchors, so the expert can answer the rest by replying to the receipt itself.
"""

from __future__ import annotations

from qa_mailer.answer.outcome import ReplyOutcome
from qa_mailer.answer.tokens import reply_address, route_message_id
from qa_mailer.classify.incoming import Incoming
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import Dispatch
from qa_mailer.route.mails import AUTOMATIC_HEADERS, question_view, service_sender
from qa_mailer.send.compose import OutgoingMail, build_mail, new_message_id
from qa_mailer.templates import Templates


def receipt_mail(
    config: Config,
    templates: Templates,
    clock: Clock,
    dispatch: Dispatch,
    incoming: Incoming,
    outcome: ReplyOutcome,
) -> OutgoingMail:
    session = config.session(dispatch.session_no)
    rendered = templates.render_mail(
        "receipt.txt",
        session.expert_language,
        session=session,
        service_name=config.service_name,
        published=[question_view(config, a.question, a.question.thread) for a in outcome.published],
        unanswered=[question_view(config, q, q.thread) for q in outcome.unanswered],
        already_published=[q.ref for q in outcome.already_published],
        already_held=[q.ref for q in outcome.already_held],
        held=[(a.question.ref, a.reason) for a in outcome.held],
        unmatched=outcome.unmatched,
        hold_reason=outcome.hold_reason,
        # Answers held by the last check (issue 9), for the expert to correct.
        to_correct=[
            (question_view(config, a.question, a.question.thread), a.reason)
            for a in outcome.to_correct
        ],
    )
    original = incoming.mail.message_id
    return build_mail(
        sender=service_sender(config, f"{config.service_name} {session.code}"),
        to=[incoming.sender],
        subject=rendered.subject
        or f"Receipt: {len(outcome.published)} answered, {len(outcome.unanswered)} open "
        f"[{session.code}]",
        text=rendered.text,
        message_id=new_message_id("receipt", config.address.domain),
        date=clock.now(),
        reply_to=reply_address(dispatch.token, config),
        in_reply_to=original,
        # The expert mail first: a reply to the receipt from a client that drops the plus
        # address still names the dispatch it belongs to.
        references=[
            route_message_id(dispatch.route_key, config),
            *([original] if original else []),
        ],
        headers={**AUTOMATIC_HEADERS, "X-Loop": config.address.address},
    )
