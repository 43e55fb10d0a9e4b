"""Rendering a digest and queuing it to the organisers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.classify.roster import Roster
from qa_mailer.clock import Clock
from qa_mailer.config import Config, ConfigError
from qa_mailer.db import DigestRun, OutboxKind
from qa_mailer.digest.build import Digest, QuestionList, build_digest
from qa_mailer.digest.listing import question_lists
from qa_mailer.route.mails import service_sender
from qa_mailer.send.compose import OutgoingMail, build_mail, encode_body, new_message_id
from qa_mailer.send.outbox import enqueue
from qa_mailer.templates import DEFAULT_LANGUAGE, Templates

log = logging.getLogger("qa_mailer.digest")

# Room kept in the size budget for the mail's headers (a long list of organisers included)
# and its MIME framing, which are written only when the mail is queued.
HEADERS_ALLOWANCE = 8_000
# The body's lists are shortened to no fewer than this many questions to keep the list attached.
FEWEST = 10


@dataclass(frozen=True)
class RenderedDigest:
    digest: Digest
    subject: str
    text: str
    html: str
    outbox_id: int | None = None  # the mail queued to the organisers, if it was sent

    @property
    def question_list(self) -> QuestionList | None:
        """The list of every question, attached when the body does not show them all."""
        return self.digest.question_list


def render_digest(
    templates: Templates, digest: Digest, language: str = DEFAULT_LANGUAGE
) -> RenderedDigest:
    """The digest in the organisers' language; its subject is set by digest.txt.

    A session whose questions all fit the body's lists (``digest.limit`` each) gets the
    digest alone. A larger one gets the list of all its questions attached: as CSV when the
    mail then stays within ``digest.budget_kb``, else zipped; if neither fits, the body's
    lists are halved (down to FEWEST) to make room; failing that the list is left out (the
    digest then says so and names the export command), and should even the body alone not
    fit, its lists are shortened until it does.
    """
    budget = digest.budget_kb * 1000
    if digest.complete or not digest.questions:
        alone = _render(templates, digest, language, None, None)
        if mail_size(alone) <= budget or not digest.questions:
            return alone
    made = datetime.strptime(digest.generated_at, "%Y-%m-%d %H:%M")
    lists = question_lists(templates, digest, language, made)
    # The list comes before the length of the body's lists: they are shortened (to no fewer
    # than FEWEST) to keep it attached, and only then is it left out.
    attempts: list[tuple[int, QuestionList | None]] = [
        (limit, attached) for limit in _limits(digest.limit, FEWEST) for attached in lists
    ]
    attempts += [(limit, None) for limit in _limits(digest.limit, 1)]
    for limit, attached in attempts:
        left_out = lists[1] if attached is None else None
        rendered = _render(templates, replace(digest, limit=limit), language, attached, left_out)
        if mail_size(rendered) <= budget:
            return rendered
    log.warning(
        "the digest of %s is %d bytes, over its budget of %d kB",
        digest.session.code,
        mail_size(rendered),
        digest.budget_kb,
    )
    return rendered


def _limits(start: int, fewest: int) -> list[int]:
    """``start``, then halved down to ``fewest`` (at least one: ``start`` itself)."""
    found = [start]
    while found[-1] // 2 >= fewest:
        found.append(found[-1] // 2)
    return found


def _render(
    templates: Templates,
    digest: Digest,
    language: str,
    attached: QuestionList | None,
    left_out: QuestionList | None,
) -> RenderedDigest:
    d = replace(digest, question_list=attached, list_left_out=left_out)
    text = templates.render_mail("digest.txt", language, digest=d)
    return RenderedDigest(
        d,
        text.subject
        or f"[{d.session.code}] Q&A digest: {d.asked} questions, {d.answered} answered, "
        f"{d.pending} pending",
        text.text,
        templates.render("digest.html", language, digest=d),
    )


def question_list_of(
    templates: Templates, rendered: RenderedDigest, language: str = DEFAULT_LANGUAGE
) -> QuestionList:
    """The list of every question the digest has attached, or would have: zipped when the
    digest has it so, else as CSV."""
    digest = rendered.digest
    found = digest.question_list or digest.list_left_out
    if found is not None:
        return found
    made = datetime.strptime(digest.generated_at, "%Y-%m-%d %H:%M")
    return question_lists(templates, digest, language, made)[0]


def mail_size(rendered: RenderedDigest) -> int:
    """The size the digest's mail will have, in bytes, its headers counted generously."""
    size = HEADERS_ALLOWANCE + len(encode_body(rendered.text)[1])
    size += len(encode_body(rendered.html)[1])
    if rendered.question_list is not None:
        encoded = -(-rendered.question_list.size // 3) * 4
        size += encoded + 2 * -(-encoded // 76)
    return size


async def produce_digest(
    session: AsyncSession,
    config: Config,
    roster: Roster,
    templates: Templates,
    clock: Clock,
    number: int,
    *,
    send: bool,
) -> RenderedDigest:
    """Build and render a session's digest on demand; with ``send``, queue it to the organisers."""
    digest = await build_digest(session, config, roster, number, clock.now())
    return await record_digest(session, config, templates, clock, digest, send=send)


async def record_digest(
    session: AsyncSession,
    config: Config,
    templates: Templates,
    clock: Clock,
    digest: Digest,
    *,
    send: bool,
    automatic_key: str | None = None,
) -> RenderedDigest:
    """Render a digest, record it, and with ``send`` queue it, all in the caller's transaction.

    An automatic digest records its key (session and day) in a unique column in the same
    transaction, so a second attempt (another process, a restart) fails at commit instead of
    sending twice.
    """
    rendered = render_digest(templates, digest, config.organiser_language)
    run = DigestRun(
        session_no=digest.session.number,
        automatic_key=automatic_key,
        closing=digest.closing,
        created_at=clock.now(),
    )
    session.add(run)
    await session.flush()
    if send:
        if not config.organisers:
            raise ConfigError(
                f"{config.path}: programme.organisers is empty: nobody to send the digest to"
            )
        row = enqueue(
            session,
            digest_mail(config, clock, rendered),
            kind=OutboxKind.DIGEST,
            ref=f"R-{run.id}",
            envelope_from=config.address.address,
            clock=clock,
        )
        await session.flush()
        run.outbox_id = row.id
        rendered = replace(rendered, outbox_id=row.id)
    if config.digest.write_to is not None:
        write_digest_files(config.digest.write_to, rendered)
    return rendered


def digest_mail(config: Config, clock: Clock, rendered: RenderedDigest) -> OutgoingMail:
    return build_mail(
        sender=service_sender(config),
        to=list(config.organisers),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=new_message_id("digest", config.address.domain),
        date=clock.now(),
        headers={"Auto-Submitted": "auto-generated", "X-Loop": config.address.address},
        attachments=[rendered.question_list.attachment] if rendered.question_list else [],
    )


def write_digest_files(folder: Path, rendered: RenderedDigest) -> tuple[Path, Path]:
    """Write the digest as ``VC3-digest.txt`` and ``VC3-digest.html`` into ``folder``.

    The attached list, if the digest has one, goes beside them under its own name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    code = rendered.digest.session.code
    text, html = folder / f"{code}-digest.txt", folder / f"{code}-digest.html"
    text.write_text(rendered.text, encoding="utf-8")
    html.write_text(rendered.html, encoding="utf-8")
    if rendered.question_list is not None:
        attachment = rendered.question_list.attachment
        (folder / attachment.filename).write_bytes(attachment.data)
    return text, html
