"""The expert's receipt: what their reply answered, what stays open, what was not used.

It carries the same reply token as the mail it answers, and quotes the open questions with
their [Q-n] anchors, so the expert can answer the rest by replying to the receipt itself.
"""

from __future__ import annotations

from qa_mailer.answer.outcome import ReplyOutcome
from qa_mailer.classify.incoming import Incoming
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import Dispatch
from qa_mailer.route.mails import AUTOMATIC_HEADERS, question_view, reply_address, service_sender
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
    text = templates.render(
        "receipt.txt",
        session=session,
        service_name=config.service_name,
        published=[question_view(config, a.question, a.question.thread) for a in outcome.published],
        unanswered=[question_view(config, q, q.thread) for q in outcome.unanswered],
        unmatched=outcome.unmatched,
        hold_reason=outcome.hold_reason,
        # Answers held one by one (the reply itself passed): issue 9's last check.
        held=[
            (question_view(config, a.question, a.question.thread), a.reason)
            for a in outcome.held
            if outcome.hold_reason is None
        ],
    )
    published, open_ = len(outcome.published), len(outcome.unanswered)
    original = incoming.mail.message_id
    return build_mail(
        sender=service_sender(config, f"{config.service_name} {session.code}"),
        to=[incoming.sender],
        subject=f"Receipt: {published} answered, {open_} open [{session.code}]",
        text=text,
        message_id=new_message_id("receipt", config.address.domain),
        date=clock.now(),
        reply_to=reply_address(dispatch.token, config),
        in_reply_to=original,
        references=[original] if original else [],
        headers={**AUTOMATIC_HEADERS, "X-Loop": config.address.address},
    )
