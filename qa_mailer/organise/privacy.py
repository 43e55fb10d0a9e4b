"""A participant's data on request: export everything held about them, or erase it.

Erasing keeps what the organisers count (the question, its session, country, state and
times; answered or not) and removes who asked and what: raw mail, the question's text,
the answers to it, and the body of every mail that showed any of it. Mail that mixed
their data with others' (a digest, a batch to the expert) loses its body whole.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aioimaplib import AioImapException
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from qa_mailer.addresses import normalise
from qa_mailer.classify.roster import load_roster
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    InboundMessage,
    MessageKind,
    OutboxMail,
    OutboxState,
    Question,
    RawMessage,
    Thread,
    UnknownTokenReply,
    dispatch_questions,
)
from qa_mailer.db.engine import session_factory
from qa_mailer.ingest.imap_connection import ImapError

# What an erased participant's address becomes: a reserved domain that no mail can reach.
ERASED_ADDRESS = "erased@erased.invalid"
# Why a mail that was still to be sent is not sent after an erase.
ERASED_REASON = "not sent: its participant's data was erased on request"
# Texts shorter than this are not searched for in other mail: "Hvala" would match too much.
MIN_SEARCHED_TEXT = 12


@dataclass(frozen=True)
class Person:
    """What identifies one participant's data in the database."""

    email: str
    threads: list[Thread]
    questions: list[Question]


async def _person(tx: AsyncSession, address: str) -> Person:
    email_ = normalise(address)
    threads = list(
        await tx.scalars(
            select(Thread).where(func.lower(Thread.participant_email) == email_).order_by(Thread.id)
        )
    )
    questions = list(
        await tx.scalars(
            select(Question)
            .where(Question.thread_id.in_([t.id for t in threads]))
            .order_by(Question.id)
        )
    )
    return Person(email_, threads, questions)


def _from_them(email_: str) -> Any:
    return or_(
        func.lower(InboundMessage.sender) == email_,
        func.lower(InboundMessage.envelope_from) == email_,
    )


def mail_text(raw: bytes) -> str:
    """A mail's headers and every text part, decoded: what a person would read in it."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = [str(value) for _, value in message.items()]
        for part in message.walk():
            if part.get_content_maintype() == "text":
                try:
                    parts.append(str(part.get_content()))
                except (LookupError, ValueError):
                    parts.append(part.get_payload(decode=True).decode("utf-8", "replace"))  # type: ignore[union-attr]
        return "\n".join(parts)
    except Exception:
        return raw.decode("utf-8", "replace")


async def export_participant(engine: AsyncEngine, config: Config, address: str) -> bytes:
    """Everything held about one participant, as UTF-8 JSON."""
    roster = load_roster(config.roster, config.countries)
    async with session_factory(engine)() as tx:
        person = await _person(tx, address)
        ids = [q.id for q in person.questions]
        answers = list(
            await tx.scalars(select(Answer).where(Answer.question_id.in_(ids)).order_by(Answer.id))
        )
        messages = list(
            await tx.scalars(
                select(InboundMessage)
                .where(_from_them(person.email))
                .options(selectinload(InboundMessage.raw_mail))
                .order_by(InboundMessage.id)
            )
        )
        mails = list(
            await tx.scalars(select(OutboxMail).where(_linked_mail(ids)).order_by(OutboxMail.id))
        )
        mails += [
            mail
            for mail in await tx.scalars(select(OutboxMail).order_by(OutboxMail.id))
            if person.email in [normalise(r) for r in mail.recipients] and mail not in mails
        ]
    participant = roster.get(person.email)
    data = {
        "email": person.email,
        "roster": None
        if participant is None
        else {
            "name": participant.name,
            "country": participant.country,
            "organisation": participant.organisation,
            "city": participant.city,
            "language": participant.language,
        },
        "threads": [
            {
                "id": t.id,
                "name": t.participant_name,
                "session": t.session_no,
                "country": t.country,
                "language": t.language,
                "created_at": _when(t.created_at),
            }
            for t in person.threads
        ],
        "questions": [
            {
                "ref": q.ref,
                "thread": q.thread_id,
                "subject": q.subject,
                "text": q.body,
                "state": q.state,
                "asked_at": _when(q.asked_at),
                "answered_at": _when(q.answered_at),
                "attachments": q.attachments,
                "answers": [
                    {
                        "ref": f"A-{a.id}",
                        "state": a.state,
                        "text": a.body,
                        "at": _when(a.created_at),
                    }
                    for a in answers
                    if a.question_id == q.id
                ],
            }
            for q in person.questions
        ],
        "messages": [
            {
                "id": m.id,
                "received_at": _when(m.received_at),
                "state": m.state,
                "subject": m.subject,
                "raw": m.raw_mail.raw.decode("utf-8", "replace"),
            }
            for m in messages
        ],
        "mails": [
            {
                "key": m.key,
                "kind": m.kind,
                "state": m.state,
                "to": m.recipients,
                "created_at": _when(m.created_at),
                "sent_at": _when(m.sent_at),
            }
            for m in mails
        ],
    }
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _linked_mail(question_ids: list[int]) -> Any:
    """Outgoing mail for these questions: theirs, and the expert's copies that carried them."""
    return or_(
        OutboxMail.question_id.in_(question_ids),
        OutboxMail.dispatch_id.in_(
            select(dispatch_questions.c.dispatch_id).where(
                dispatch_questions.c.question_id.in_(question_ids)
            )
        ),
    )


@dataclass(frozen=True)
class Erased:
    questions: int
    messages: int  # inbound mail whose raw copy was removed
    mails: int  # outgoing mail whose body was removed
    on_roster: bool  # the roster file still names them: the organiser removes that line
    # Mail deleted from the IMAP mailbox (None: privacy.erase_mailbox_copies is off, or
    # there is no mailbox), and why that failed, if it did (the database is erased anyway).
    mailbox: int | None = None
    mailbox_error: str | None = None


async def erase_participant(engine: AsyncEngine, config: Config, address: str) -> Erased:
    """Erase one participant's data in one transaction (see the module's docstring)."""
    roster = load_roster(config.roster, config.countries)
    async with session_factory(engine).begin() as tx:
        person = await _person(tx, address)
        ids = [q.id for q in person.questions]
        needles = _needles(person)
        answer_messages = set(
            await tx.scalars(select(Answer.message_id).where(Answer.question_id.in_(ids)))
        )
        messages = await _erase_messages(tx, person.email, answer_messages, needles)
        mails = await _erase_mails(tx, person.email, ids, needles)
        await tx.execute(
            update(Answer)
            .where(Answer.question_id.in_(ids))
            .values(body="")
            .execution_options(synchronize_session=False)
        )
        for answer in await tx.scalars(select(Answer).where(Answer.reason.is_not(None))):
            answer.reason = _scrub(answer.reason, needles)
        for question in person.questions:
            question.subject, question.body, question.attachments = "", "", []
        for thread in person.threads:
            thread.participant_email = ERASED_ADDRESS
            thread.participant_name = ""
            thread.subject_key = ""
        await tx.execute(
            update(UnknownTokenReply)
            .where(func.lower(UnknownTokenReply.sender) == person.email)
            .values(sender=ERASED_ADDRESS)
            .execution_options(synchronize_session=False)
        )
    erased = Erased(len(ids), messages, mails, roster.get(person.email) is not None)
    if config.privacy.erase_mailbox_copies and config.imap is not None:
        from qa_mailer.organise.mailbox import erase_mailbox_copies

        try:
            erased = replace(erased, mailbox=await erase_mailbox_copies(config.imap, person.email))
        except (OSError, TimeoutError, ImapError, AioImapException) as exc:
            erased = replace(erased, mailbox_error=f"{type(exc).__name__}: {exc}")
    return erased


def _needles(person: Person) -> list[str]:
    """What must not remain anywhere: the address, the names, the questions' texts."""
    found = {person.email}
    found |= {t.participant_name for t in person.threads if len(t.participant_name) >= 3}
    found |= {
        text.strip()
        for q in person.questions
        for text in (q.body, q.subject)
        if len(text.strip()) >= MIN_SEARCHED_TEXT
    }
    return sorted(found, key=len, reverse=True)


def _mentions(text: str, needles: Iterable[str]) -> bool:
    folded = text.casefold()
    return any(needle.casefold() in folded for needle in needles)


def _scrub(text: str | None, needles: Iterable[str]) -> str | None:
    """``text`` with every needle replaced, whatever its case."""
    if text is None:
        return None
    for needle in needles:
        replacement = ERASED_ADDRESS if "@" in needle else "[erased]"
        text = re.sub(re.escape(needle), replacement, text, flags=re.IGNORECASE)
    return text


async def _mentioning(
    tx: AsyncSession, query: Any, needles: list[str], address: str | None = None
) -> set[int]:
    """Ids of the (id, raw) rows of ``query`` whose mail shows any needle (or goes to
    ``address``), read a few at a time: raw mail is never all in memory at once."""
    found: set[int] = set()
    result = await tx.stream(query.execution_options(yield_per=100))
    async for id_, raw in result:
        if not raw:
            continue
        text = mail_text(raw)
        if _mentions(text, needles) or (address and address in text.casefold()):
            found.add(id_)
    return found


async def _erase_messages(
    tx: AsyncSession, email_: str, answer_messages: set[int], needles: list[str]
) -> int:
    """Raw mail from them, replies that answered them, and any reply that quotes them."""
    ids = set(await tx.scalars(select(InboundMessage.id).where(_from_them(email_))))
    ids |= answer_messages
    # Experts' replies quote the questions they answer: any of them may show this person.
    ids |= await _mentioning(
        tx,
        select(InboundMessage.id, RawMessage.raw)
        .join(RawMessage)
        .where(InboundMessage.kind.in_((MessageKind.REPLY, MessageKind.EXPERT))),
        needles,
    )
    erased = 0
    for message in await tx.scalars(
        select(InboundMessage).where(InboundMessage.id.in_(ids)).order_by(InboundMessage.id)
    ):
        erased += 1
        mine = (
            normalise(message.sender or "") == email_
            or normalise(message.envelope_from or "") == email_
        )
        if mine:
            message.sender = message.envelope_from = message.peer = None
            message.subject = message.rfc_message_id = None
        message.subject = _scrub(message.subject, needles)
        message.reason = _scrub(message.reason, needles)
        message.traceback = _scrub(message.traceback, needles)
    await tx.execute(update(RawMessage).where(RawMessage.message_id.in_(ids)).values(raw=b""))
    return erased


async def _erase_mails(
    tx: AsyncSession, email_: str, question_ids: list[int], needles: list[str]
) -> int:
    """Every outgoing mail to them, for their questions, or showing their data."""
    ids = set(await tx.scalars(select(OutboxMail.id).where(_linked_mail(question_ids))))
    ids |= await _mentioning(tx, select(OutboxMail.id, OutboxMail.raw), needles, email_)
    erased = 0
    rows = await tx.scalars(
        select(OutboxMail).where(OutboxMail.id.in_(ids)).order_by(OutboxMail.id)
    )
    for mail in rows:
        erased += 1
        mail.raw = b""
        mail.recipients = [ERASED_ADDRESS if normalise(r) == email_ else r for r in mail.recipients]
        mail.outcomes = {
            (ERASED_ADDRESS if normalise(address) == email_ else address): {
                **outcome,
                "text": _scrub(str(outcome.get("text", "")), needles),
            }
            for address, outcome in (mail.outcomes or {}).items()
        }
        mail.last_error = _scrub(mail.last_error, needles)
        if mail.state in (OutboxState.QUEUED, OutboxState.SENDING):
            mail.state, mail.last_error = OutboxState.FAILED, ERASED_REASON
            mail.claimed_by = mail.lease_until = None
    return erased
