"""The programme report: one digest across every session and country, fit to forward.

Asked, answered and pending per session and per country, the median wait for an answer and
the longest wait still open, and the questions still open, the longest-waiting first (at
most ``digest.list_questions`` of them: each session's digest lists the rest). The
HTML (templates/programme.html) is made for mail clients: inline styles, tables for layout,
the per-country bars drawn with table cells, no scripts, no remote images; programme.txt is
its plain-text twin.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.classify.roster import Roster
from qa_mailer.clock import Clock
from qa_mailer.config import Config, ConfigError
from qa_mailer.db import DigestRun, OutboxKind
from qa_mailer.digest.build import UNASSIGNED, DigestQuestion, build_digest
from qa_mailer.route.mails import service_sender
from qa_mailer.send.compose import build_mail, new_message_id
from qa_mailer.send.outbox import enqueue
from qa_mailer.templates import DEFAULT_LANGUAGE, Templates

# The programme report is recorded as a digest run of this session number.
PROGRAMME = 0
# The widest bar, in percent of the bar column; the rest of the column stays blank.
FULL_BAR = 100


@dataclass(frozen=True)
class Tally:
    """Counts and waits of a group of questions: a session, a country, or all of them."""

    code: str
    name: str
    asked: int
    answered: int
    median_wait: float | None  # of the answered questions, in seconds
    longest_open: float | None  # of the questions still waiting, in seconds

    @property
    def pending(self) -> int:
        return self.asked - self.answered


@dataclass(frozen=True)
class CountryBar:
    """A country's row with its bar: the answered and pending parts in percent of the widest."""

    tally: Tally
    answered_width: int
    pending_width: int

    @property
    def rest_width(self) -> int:
        return FULL_BAR - self.answered_width - self.pending_width


@dataclass(frozen=True)
class OpenQuestion:
    session: str
    country: str
    question: DigestQuestion


@dataclass(frozen=True)
class Programme:
    service_name: str
    generated_at: str
    timezone: str
    total: Tally
    sessions: tuple[Tally, ...]
    countries: tuple[CountryBar, ...]
    # Every question still open, the longest-waiting first; the report shows the first ``limit``.
    open: tuple[OpenQuestion, ...]
    limit: int = 20

    @property
    def open_shown(self) -> tuple[OpenQuestion, ...]:
        return self.open[: self.limit]


def tally(code: str, name: str, questions: list[DigestQuestion]) -> Tally:
    answered = [q.waited_seconds for q in questions if q.answered]
    waiting = [q.waited_seconds for q in questions if not q.answered]
    return Tally(
        code=code,
        name=name,
        asked=len(questions),
        answered=len(answered),
        median_wait=statistics.median(answered) if answered else None,
        longest_open=max(waiting) if waiting else None,
    )


def bars(tallies: list[Tally]) -> tuple[CountryBar, ...]:
    """Each country's bar, scaled so the country with most questions fills the column."""
    widest = max((t.asked for t in tallies), default=0)
    found = []
    for t in tallies:
        answered = round(FULL_BAR * t.answered / widest) if widest else 0
        asked = round(FULL_BAR * t.asked / widest) if widest else 0
        found.append(CountryBar(t, answered, asked - answered))
    return tuple(found)


async def build_programme(
    db: AsyncSession, config: Config, roster: Roster, now: datetime
) -> Programme:
    """Gather every session's questions into the programme report."""
    every: list[DigestQuestion] = []
    by_country: dict[str, list[DigestQuestion]] = {c.code: [] for c in config.countries}
    sessions: list[Tally] = []
    still_open: list[OpenQuestion] = []
    for session in config.sessions:
        digest = await build_digest(db, config, roster, session.number, now)
        sessions.append(tally(session.code, session.title, list(digest.questions)))
        for country in digest.countries:
            by_country.setdefault(country.code, []).extend(country.questions)
            still_open += [
                OpenQuestion(session.code, country.code, q)
                for q in country.questions
                if not q.answered
            ]
        every += digest.questions
    names = {c.code: c.name for c in config.countries} | {UNASSIGNED: "Country not assigned"}
    countries = [
        tally(code, names.get(code, code), questions)
        for code, questions in by_country.items()
        if questions or code != UNASSIGNED
    ]
    zone = config.digest.timezone
    return Programme(
        service_name=config.service_name,
        generated_at=now.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        timezone=str(zone.key),
        total=tally("", "", every),
        sessions=tuple(sessions),
        countries=bars(countries),
        open=tuple(sorted(still_open, key=lambda o: -o.question.waited_seconds)),
        limit=config.digest.list_questions,
    )


@dataclass(frozen=True)
class RenderedProgramme:
    programme: Programme
    subject: str
    text: str
    html: str


def render_programme(
    templates: Templates, programme: Programme, language: str = DEFAULT_LANGUAGE
) -> RenderedProgramme:
    """The report in the organisers' language; its subject is set by programme.txt."""
    text = templates.render_mail("programme.txt", language, programme=programme)
    return RenderedProgramme(
        programme,
        text.subject or f"{programme.service_name}: programme report",
        text.text,
        templates.render("programme.html", language, programme=programme),
    )


async def produce_programme(
    db: AsyncSession,
    config: Config,
    roster: Roster,
    templates: Templates,
    clock: Clock,
    *,
    send: bool,
    automatic_key: str | None = None,
) -> tuple[RenderedProgramme, int | None]:
    """Build and render the report; with ``send``, queue it in the caller's transaction.

    It is recorded as a digest run of session 0 (the programme); an automatic one under its
    day's key ("programme:2026-12-07"), unique, so it goes once across processes.
    Returns the report and the outbox id of the queued mail.
    """
    rendered = render_programme(
        templates, await build_programme(db, config, roster, clock.now()), config.organiser_language
    )
    run = DigestRun(
        session_no=PROGRAMME, automatic_key=automatic_key, closing=False, created_at=clock.now()
    )
    db.add(run)
    await db.flush()
    if not send:
        return rendered, None
    if not config.organisers:
        raise ConfigError(
            f"{config.path}: programme.organisers is empty: nobody to send the report to"
        )
    row = enqueue(
        db,
        build_mail(
            sender=service_sender(config),
            to=list(config.organisers),
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=new_message_id("programme", config.address.domain),
            date=clock.now(),
            headers={"Auto-Submitted": "auto-generated", "X-Loop": config.address.address},
        ),
        kind=OutboxKind.DIGEST,
        ref=f"R-{run.id}",
        envelope_from=config.address.address,
        clock=clock,
    )
    await db.flush()
    run.outbox_id = row.id
    return rendered, row.id
