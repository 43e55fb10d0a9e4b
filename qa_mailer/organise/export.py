"""Questions and answers for the final report: CSV (for Excel), Markdown, HTML and JSON.

Headings and documents are templates (export_columns.txt, export.md, export.html) in the
organisers' language; the JSON keys are the same as ExportRow's fields, for programs.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.classify.roster import load_roster
from qa_mailer.config import Config
from qa_mailer.db import Answer, AnswerState, Question, Thread
from qa_mailer.db.engine import session_factory
from qa_mailer.templates import Templates, duration

FORMATS = ("csv", "md", "html", "json")


@dataclass(frozen=True)
class ExportRow:
    """One question as the report shows it; times are in the service's time zone."""

    ref: str
    question: str
    asker: str
    email: str
    organisation: str
    country: str  # a code, "" if unassigned
    session: int
    session_code: str
    subject: str
    state: str
    asked_at: str  # ISO 8601 with the offset
    answered_at: str | None
    wait_seconds: float | None
    answer: str  # every published answer, in order, a blank line between them
    follow_up_to: str | None
    merged_into: str | None

    @property
    def asked(self) -> str:
        return self.asked_at[:16].replace("T", " ")

    @property
    def answered(self) -> str:
        return self.answered_at[:16].replace("T", " ") if self.answered_at else ""

    @property
    def wait(self) -> str:
        return duration(self.wait_seconds) if self.wait_seconds is not None else ""


async def export_rows(
    engine: AsyncEngine, config: Config, session: int | None = None
) -> list[ExportRow]:
    """Every question (of one session, if given), oldest first, with its published answers.

    A question merged into another shows that one's answer: it is the answer its asker got.
    """
    roster = load_roster(config.roster, config.countries)
    query = select(Question, Thread).join(Thread, Thread.id == Question.thread_id)
    if session is not None:
        query = query.where(Thread.session_no == session)
    async with session_factory(engine)() as tx:
        pairs = (await tx.execute(query.order_by(Question.id))).all()
        wanted = {q.id for q, _ in pairs} | {q.merged_into for q, _ in pairs if q.merged_into}
        answers: dict[int, list[str]] = {}
        for answer in await tx.scalars(
            select(Answer)
            .where(Answer.question_id.in_(wanted), Answer.state == AnswerState.PUBLISHED)
            .order_by(Answer.id)
        ):
            answers.setdefault(answer.question_id, []).append(answer.body)
    rows = []
    for question, thread in pairs:
        participant = roster.get(thread.participant_email)
        answered = question.answered_at
        rows.append(
            ExportRow(
                ref=question.ref,
                question=question.body,
                asker=thread.participant_name,
                email=thread.participant_email,
                organisation=participant.organisation if participant else "",
                country=thread.country or "",
                session=thread.session_no,
                session_code=config.session(thread.session_no).code,
                subject=question.subject,
                state=question.state,
                asked_at=_local(question.asked_at, config),
                answered_at=_local(answered, config) if answered else None,
                wait_seconds=(answered - question.asked_at).total_seconds() if answered else None,
                answer="\n\n".join(answers.get(question.merged_into or question.id, [])),
                follow_up_to=f"Q-{question.follow_up_to}" if question.follow_up_to else None,
                merged_into=f"Q-{question.merged_into}" if question.merged_into else None,
            )
        )
    return rows


def _local(moment: datetime, config: Config) -> str:
    return moment.astimezone(config.timezone).isoformat(timespec="seconds")


async def export_questions(
    engine: AsyncEngine, config: Config, form: str, session: int | None = None
) -> bytes:
    """The export in ``form`` (one of FORMATS), as the bytes to write to a file."""
    if form not in FORMATS:
        raise ValueError(f"no export format {form!r} (formats: {', '.join(FORMATS)})")
    rows = await export_rows(engine, config, session)
    if form == "json":
        items = [asdict(row) for row in rows]
        return (json.dumps(items, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    templates = Templates.of(config)
    language = config.organiser_language
    if form == "csv":
        return _csv(rows, templates, language)
    context = {
        "rows": rows,
        "session": config.session(session) if session is not None else None,
        "document_language": language,
    }
    return templates.render(f"export.{form}", language, **context).encode("utf-8")


# The columns of the CSV, in the order export_columns.txt names their headings.
CSV_COLUMNS = (
    "question",
    "asker",
    "organisation",
    "country",
    "session_code",
    "asked",
    "answered",
    "wait",
    "answer",
    "ref",
    "email",
    "subject",
    "state",
)


def _csv(rows: list[ExportRow], templates: Templates, language: str) -> bytes:
    """UTF-8 with a byte-order mark and CRLF rows: Excel opens it with every letter right."""
    headings = [
        line.strip()
        for line in templates.render("export_columns.txt", language).splitlines()
        if line.strip()
    ]
    if len(headings) != len(CSV_COLUMNS):
        raise ValueError(
            f"export_columns.txt names {len(headings)} headings; the export has "
            f"{len(CSV_COLUMNS)} columns ({', '.join(CSV_COLUMNS)})"
        )
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headings)
    for row in rows:
        writer.writerow([getattr(row, column) for column in CSV_COLUMNS])
    return out.getvalue().encode("utf-8-sig")
