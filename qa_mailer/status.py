"""`qa-mailer status`: where every question and message stands, per session and country."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    AnswerState,
    Bounce,
    InboundMessage,
    MessageState,
    OutboxMail,
    OutboxState,
    Question,
    Thread,
    Worker,
)
from qa_mailer.db.engine import session_factory

COLUMNS = ("new", "with_expert", "answered", "closed", "merged", "held")
# How many of the latest failed or partly refused mails `status` lists with their reasons.
REFUSALS_SHOWN = 10
IGNORED_SHOWN = 5


@dataclass
class StatusReport:
    # (session number, country code or None) -> column -> count
    questions: dict[tuple[int, str | None], Counter[str]] = field(default_factory=dict)
    messages: Counter[str] = field(default_factory=Counter)
    outbox: Counter[str] = field(default_factory=Counter)
    # Sent mail that some recipients refused for good, and the latest of them, to show whom.
    partly_refused: int = 0
    refusals: list[OutboxMail] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)  # running, or stopped in the last day
    # The latest bounces, and how many addresses bounced in all.
    bounces: list[Bounce] = field(default_factory=list)
    bounced_addresses: int = 0
    # The latest mail recorded and not answered (machine-made, or with no sender), and why.
    ignored: list[InboundMessage] = field(default_factory=list)
    now: datetime | None = None
    dead_after: timedelta = timedelta(seconds=15)


async def status_text(engine: AsyncEngine, config: Config) -> str:
    """The report `qa-mailer status` prints, as of now."""
    async with session_factory(engine)() as session:
        report = await gather_status(
            session, SystemClock().now(), timedelta(seconds=config.workers.dead_after_seconds)
        )
        return format_status(report, config)


async def gather_status(
    session: AsyncSession, now: datetime, dead_after: timedelta = timedelta(seconds=15)
) -> StatusReport:
    report = StatusReport(now=now, dead_after=dead_after)
    rows = await session.execute(
        select(Thread.session_no, Thread.country, Question.state, func.count())
        .join(Question, Question.thread_id == Thread.id)
        .group_by(Thread.session_no, Thread.country, Question.state)
    )
    for number, country, state, count in rows:
        report.questions.setdefault((number, country), Counter())[state] += count
    held = await session.execute(
        select(Thread.session_no, Thread.country, func.count(func.distinct(Answer.question_id)))
        .join(Question, Question.thread_id == Thread.id)
        .join(Answer, Answer.question_id == Question.id)
        .where(Answer.state == AnswerState.HELD)
        .group_by(Thread.session_no, Thread.country)
    )
    for number, country, count in held:
        report.questions.setdefault((number, country), Counter())["held"] += count
    for state, count in await session.execute(
        select(InboundMessage.state, func.count()).group_by(InboundMessage.state)
    ):
        report.messages[state] += count
    for state, count in await session.execute(
        select(OutboxMail.state, func.count()).group_by(OutboxMail.state)
    ):
        report.outbox[state] += count
    refused = (OutboxMail.state == OutboxState.SENT) & (OutboxMail.refused > 0)
    report.partly_refused = int(
        await session.scalar(select(func.count()).select_from(OutboxMail).where(refused)) or 0
    )
    report.refusals = list(
        await session.scalars(
            select(OutboxMail)
            .where(refused | (OutboxMail.state == OutboxState.FAILED))
            .order_by(OutboxMail.id.desc())
            .limit(REFUSALS_SHOWN)
        )
    )
    report.bounces = list(
        await session.scalars(select(Bounce).order_by(Bounce.id.desc()).limit(REFUSALS_SHOWN))
    )
    report.bounced_addresses = int(
        await session.scalar(select(func.count(func.distinct(Bounce.address)))) or 0
    )
    report.ignored = list(
        await session.scalars(
            select(InboundMessage)
            .where(InboundMessage.state == MessageState.IGNORED)
            .order_by(InboundMessage.id.desc())
            .limit(IGNORED_SHOWN)
        )
    )
    report.workers = list(
        await session.scalars(
            select(Worker)
            .where(Worker.stopped_at.is_(None) | (Worker.stopped_at >= now - timedelta(days=1)))
            .order_by(Worker.id)
        )
    )
    return report


def format_status(report: StatusReport, config: Config) -> str:
    """The report as a plain-text table."""
    lines = [f"{'':34}{'new':>6}{'expert':>8}{'answered':>10}{'closed':>8}{'merged':>8}{'held':>6}"]
    names = {c.code: c.name for c in config.countries}
    for session in config.sessions:
        title = f"{session.code} {session.title}"[:70]
        keys = [key for key in report.questions if key[0] == session.number]
        if not keys:
            lines.append(f"{title} (no questions yet)")
            continue
        lines.append(title)
        codes: list[str | None] = [c.code for c in config.countries]
        codes += sorted({c for (_, c) in keys if c not in codes}, key=lambda c: c or "~")
        for code in codes:
            counts = report.questions.get((session.number, code), Counter())
            label = f"  {code or '--'} {names.get(code or '', 'unassigned')}"
            widths = zip(COLUMNS, (6, 8, 10, 8, 8, 6), strict=True)
            lines.append(f"{label:34}" + "".join(f"{counts[c]:>{w}}" for c, w in widths))
    m, o = report.messages, report.outbox
    lines.append("")
    lines.append(
        f"Messages: {m[MessageState.RECEIVED]} waiting, {m[MessageState.PROCESSING]} processing, "
        f"{m[MessageState.PROCESSED]} processed, "
        f"{m[MessageState.IGNORED]} ignored (automatic), {m[MessageState.HELD]} held, "
        f"{m[MessageState.QUARANTINED]} quarantined"
    )
    lines.extend(format_ignored(report))
    queued, sent, failed = o[OutboxState.QUEUED], o[OutboxState.SENT], o[OutboxState.FAILED]
    partly = f" ({report.partly_refused} partly refused)" if report.partly_refused else ""
    lines.append(
        f"Outbox: {queued} queued, {o[OutboxState.SENDING]} sending, {sent} sent{partly}, "
        f"{failed} failed"
    )
    lines.extend(format_refusals(report))
    lines.extend(format_bounces(report))
    lines.append("")
    lines.extend(format_workers(report))
    return "\n".join(lines)


def format_bounces(report: StatusReport) -> list[str]:
    """How many addresses bounced, and the latest bounces: whose, for good or not, of what."""
    if not report.bounces:
        return []
    lines = [
        f"Bounces: {report.bounced_addresses} address(es) bounced; "
        f"the latest (up to {REFUSALS_SHOWN}):"
    ]
    for b in report.bounces:
        what = f"{b.kind or 'mail'}" + (f" about Q-{b.question_id}" if b.question_id else "")
        lasting = "permanent" if b.permanent else "temporary"
        when = b.created_at.strftime("%Y-%m-%d %H:%M")
        lines.append(f"    {b.address:<32} {lasting:<9} {what:<20} {when} (M-{b.message_id})")
    return lines


def format_refusals(report: StatusReport) -> list[str]:
    """The latest mails that failed or that some recipients refused, with whom and why."""
    if not report.refusals:
        return []
    lines = [f"  latest failed or refused (up to {REFUSALS_SHOWN}):"]
    for mail in report.refusals:
        lines.append(f"    {mail.key:<16} {mail.state:<7} {(mail.last_error or '')[:200]}")
    return lines


def format_ignored(report: StatusReport) -> list[str]:
    """The latest ignored mails: who sent them, their subject, and the rule that ignored them."""
    if not report.ignored:
        return []
    lines = [f"  latest ignored (up to {IGNORED_SHOWN}):"]
    for message in report.ignored:
        sender = message.sender or message.envelope_from or "(no sender)"
        subject = (message.subject or "(no subject)")[:60]
        lines.append(f"    M-{message.id:<5} {sender[:60]}  {subject!r}: {message.reason or ''}")
    return lines


def format_workers(report: StatusReport) -> list[str]:
    """The processes on this database: running ones with their last heartbeat, recent exits."""
    if not report.workers or report.now is None:
        return ["Processes: none running (start one with `qa-mailer serve`)"]
    now = report.now
    lines = ["Processes:"]
    for worker in report.workers:
        silent = (now - worker.heartbeat_at).total_seconds()
        if worker.stopped_at is not None:
            state = (
                f"stopped {_ago((now - worker.stopped_at).total_seconds())}: {worker.stop_reason}"
            )
        elif silent > report.dead_after.total_seconds():
            state = f"silent for {_ago(silent, suffix='')} (presumed dead at the next check)"
        else:
            state = f"running, heartbeat {_ago(silent)}"
        lines.append(
            f"  worker {worker.id:<4} pid {worker.pid:<7} on {worker.host}  "
            f"{worker.roles:<30} {state}"
        )
    return lines


def _ago(seconds: float, suffix: str = " ago") -> str:
    if seconds < 120:
        return f"{seconds:.0f} s{suffix}"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min{suffix}"
    return f"{seconds / 3600:.0f} h{suffix}"
