"""An organiser decides held answers by replying to the notice that listed them.

The notice's Reply-To carries a token of its own (``qa+o<token>@...``, answer/tokens.py),
made with the notice, stored with the held answers it listed, and good for
``answers.token_valid_days``. A reply that brings it back is checked as an expert's reply
is: it must come from an address in ``programme.organisers``, sent by that address alone,
and pass the Authentication-Results check where one is configured (answer/checks.py). Only
then are its commands read; a reply that fails is held for the organisers (a forger gains
nothing, and the organisers see the attempt), and acts on nothing.

The grammar, which the notice itself explains: the first lines of the reply's own text (the
quote and signature trimmed), one command per line, blank lines between them allowed; the
first line that is not a command ends them, and nothing after it is read.

    approve A-12            publish held answer A-12 (several: approve A-12 A-13, A-14)
    reject A-12             drop it; its question stays open
    approve all             every held answer the notice listed (reject all likewise)

Case does not matter, and "A-12" may be written "a12". A command acts only on the answers the
notice listed. Everything else in the reply is ignored, and the organiser gets a receipt
saying what was done. An answer is published once however many organisers approve it, and
however often a reply is sent again (answer/decide.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.addresses import addresses_in
from qa_mailer.answer.checks import authentication_reason
from qa_mailer.answer.decide import Decision, decide
from qa_mailer.answer.desk import AnswerDesk
from qa_mailer.classify.incoming import Incoming
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import NoticeToken, OutboxKind, OutboxMail
from qa_mailer.replies import parse_reply
from qa_mailer.route.mails import AUTOMATIC_HEADERS, service_sender
from qa_mailer.send.compose import OutgoingMail, build_mail, new_message_id
from qa_mailer.send.outbox import enqueue, outbox_key
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.organise")

_REF = r"a-?\s?\d+"
_COMMAND = re.compile(
    rf"^(approve|reject)\s+(all|{_REF}(?:\s*(?:,|;|\band\b|\s)\s*{_REF})*)\s*[.!]?$",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+")
# A reply with more commands than this is not an organiser writing by hand.
MOST_COMMANDS = 50
UNKNOWN_NOTICE = "organiser command: the notice token matches no notice we sent"


@dataclass(frozen=True)
class Command:
    approve: bool
    answers: tuple[int, ...] | None  # None: every answer the notice listed

    @property
    def verb(self) -> str:
        return "approve" if self.approve else "reject"


def read_commands(text: str) -> list[Command]:
    """The commands at the top of ``text`` (the reply's own text), in order."""
    commands: list[Command] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        match = _COMMAND.match(stripped)
        if match is None or len(commands) == MOST_COMMANDS:
            break
        verb, what = match.group(1).lower(), match.group(2)
        answers = None if what.lower() == "all" else tuple(int(n) for n in _NUMBER.findall(what))
        commands.append(Command(verb == "approve", answers))
    return commands


@dataclass
class CommandOutcome:
    """What an organiser's reply did; ``hold_reason``/``ignore_reason`` as for a reply."""

    results: list[tuple[str, str]]  # (A-12, what happened), in order
    hold_reason: str | None = None
    ignore_reason: str | None = None


def check_organiser(incoming: Incoming, config: Config, token: NoticeToken) -> str | None:
    """Why this reply may not act, or None: organiser, sent alone, authenticated, in date."""
    organisers = set(config.organisers)
    if incoming.sender not in organisers:
        return f"the reply comes from {incoming.sender or 'no address'}, not from an organiser"
    sender = incoming.mail.header("Sender")
    others = [a for a in addresses_in(sender or "") if a not in organisers]
    if others:
        return f"sent on the organiser's behalf by {others[0]}"
    problem = authentication_reason(incoming, config)
    if problem is not None:
        return problem
    if incoming.received_at > token.expires_at:
        return f"the notice's token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC"
    return None


class CommandDesk:
    """Reads an organiser's reply to a notice and carries out its commands."""

    def __init__(self, config: Config, templates: Templates, clock: Clock, answers: AnswerDesk):
        self._config = config
        self._templates = templates
        self._clock = clock
        self._answers = answers

    async def handle(
        self, tx: AsyncSession, message_id: int, incoming: Incoming, tokens: tuple[str, ...]
    ) -> CommandOutcome:
        """Check the reply ``message_id`` and do what it says, in the caller's transaction."""
        token = (
            await tx.scalar(
                select(NoticeToken)
                .where(NoticeToken.token.in_(tokens))
                .order_by(NoticeToken.id.desc())
            )
            if tokens
            else None
        )
        if token is None:
            # Not worth an organiser's time: a guess, or a mangled address.
            return CommandOutcome([], ignore_reason=UNKNOWN_NOTICE)
        problem = check_organiser(incoming, self._config, token)
        if problem is not None:
            outcome = CommandOutcome([], hold_reason=f"organiser command: {problem}")
            log.warning(
                "%s: a reply to a notice did nothing: %s", incoming.mail.message_id, problem
            )
        else:
            outcome = await self._carry_out(tx, incoming, token)
        key = outbox_key(OutboxKind.RECEIPT, f"M-{message_id}")
        # The receipt goes to the organiser's own address only, never to a stranger; once
        # per message (one released and processed again gets none: a failed insert would
        # undo the rest).
        if incoming.sender in self._config.organisers and not await tx.scalar(
            select(OutboxMail.id).where(OutboxMail.key == key)
        ):
            enqueue(
                tx,
                command_receipt_mail(self._config, self._templates, self._clock, incoming, outcome),
                kind=OutboxKind.RECEIPT,
                ref=f"M-{message_id}",
                envelope_from=self._config.address.address,
                clock=self._clock,
            )
        return outcome

    async def _carry_out(
        self, tx: AsyncSession, incoming: Incoming, token: NoticeToken
    ) -> CommandOutcome:
        mail = incoming.mail
        text = parse_reply(text=mail.text_plain, html=mail.html, questions=[]).new_text
        commands = read_commands(text)
        if not commands:
            return CommandOutcome([], ignore_reason="organiser command: no command in the reply")
        listed = list(token.answers)
        results: list[tuple[str, str]] = []
        seen: set[int] = set()
        for command in commands:
            for answer_id in listed if command.answers is None else command.answers:
                ref = f"A-{answer_id}"
                if answer_id in seen:
                    results.append((ref, f"{command.verb}: decided above in this reply"))
                    continue
                seen.add(answer_id)
                if answer_id not in listed:
                    results.append((ref, f"{command.verb}: not in this notice, nothing done"))
                    continue
                decision = await decide(tx, self._answers, answer_id, approve=command.approve)
                results.append((ref, _said(command, decision)))
        log.info(
            "%s: organiser %s decided by mail: %s",
            mail.message_id,
            incoming.sender,
            "; ".join(f"{ref} {what}" for ref, what in results) or "nothing",
        )
        return CommandOutcome(results)


def command_receipt_mail(
    config: Config,
    templates: Templates,
    clock: Clock,
    incoming: Incoming,
    outcome: CommandOutcome,
) -> OutgoingMail:
    """The organiser's receipt: what their reply to a notice did, or why it did nothing."""
    rendered = templates.render_mail(
        "command_receipt.txt",
        config.organiser_language,
        service_name=config.service_name,
        reply_subject=incoming.mail.subject or "(no subject)",
        results=outcome.results,
        refused=outcome.hold_reason.partition(": ")[2] if outcome.hold_reason else None,
        no_command=outcome.ignore_reason is not None,
    )
    original = incoming.mail.message_id
    return build_mail(
        sender=service_sender(config),
        to=[incoming.sender],
        subject=rendered.subject or "Receipt: your reply to the notice",
        text=rendered.text,
        message_id=new_message_id("receipt", config.address.domain),
        date=clock.now(),
        reply_to=", ".join(config.organisers) or None,
        in_reply_to=original,
        references=[original] if original else [],
        headers={**AUTOMATIC_HEADERS, "X-Loop": config.address.address},
    )


def _said(command: Command, decision: Decision) -> str:
    question = f" (the answer to {decision.question_ref})" if decision.question_ref else ""
    if decision.question_ref is None:
        return f"{command.verb}: no such answer, nothing done"
    if decision.changed:
        done = "published: sent to the participant" if command.approve else "rejected"
        return f"{done}{question}"
    return f"{command.verb}: already {decision.outcome}{question}, nothing done"
