"""The list of every question of a session, attached to its digest: CSV, zipped when large.

The digest's body shows a bounded number of questions; this list holds them all, one row
each, in the order the digest shows them (the waiting ones first, the longest-waiting first),
with the beginning of each question rather than its whole text: the whole texts and answers
are in `qa-mailer export`. The headings are a template (digest_columns.txt) in the
organisers' language.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime

from qa_mailer.digest.build import Digest, DigestQuestion, QuestionList
from qa_mailer.send.compose import Attachment
from qa_mailer.templates import Templates

# The columns of the list, in the order digest_columns.txt names their headings.
COLUMNS = (
    "ref",
    "state",
    "country",
    "participant",
    "email",
    "organisation",
    "asked_at",
    "wait_minutes",
    "answers",
    "follow_up_to",
    "subject",
    "beginning",
)
# The beginning of a question in the list: its first line that is not blank, cut here.
BEGINNING_CHARS = 80
CSV_TYPE = "text/csv; charset=utf-8"
FORMULA_STARTS = frozenset("=+-@")
ZIP_TYPE = "application/zip"


def beginning(text: str, limit: int = BEGINNING_CHARS) -> str:
    """The first line of ``text`` that is not blank, cut at a word before ``limit`` with "..."."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) <= limit:
        return line
    cut = line[: limit - 3]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "..."


def cell(text: str) -> str:
    """Text from a participant as a cell a spreadsheet shows and never runs as a formula.

    Excel and LibreOffice read a cell that starts with one of ``= + - @`` (or a tab or
    carriage return before one) as a formula; a subject such as ``=HYPERLINK(...)`` would
    become a link in the organisers' spreadsheet. Such a cell starts with an apostrophe.
    """
    return "'" + text if text.lstrip("\t\r ")[:1] in FORMULA_STARTS else text


def listed(digest: Digest) -> tuple[DigestQuestion, ...]:
    """Every question in the order the list has them: waiting (longest first), then the rest."""
    waiting = digest.waiting
    shown = {q.ref for q in waiting}
    return waiting + tuple(q for q in digest.questions if q.ref not in shown)


def question_list_csv(templates: Templates, digest: Digest, language: str) -> bytes:
    """UTF-8 with a byte-order mark and CRLF rows, like the export: Excel reads every letter."""
    headings = [
        line.strip()
        for line in templates.render("digest_columns.txt", language).splitlines()
        if line.strip()
    ]
    if len(headings) != len(COLUMNS):
        raise ValueError(
            f"digest_columns.txt names {len(headings)} headings; the list has "
            f"{len(COLUMNS)} columns ({', '.join(COLUMNS)})"
        )
    countries = {q.ref: c.code for c in digest.countries for q in c.questions}
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headings)
    for q in listed(digest):
        writer.writerow(
            [
                q.ref,
                q.state,
                countries[q.ref],
                cell(q.participant),
                cell(q.email),
                cell(q.organisation),
                q.asked_at,
                int(q.waited_seconds // 60),
                len(q.answers),
                q.follow_up_to or "",
                cell(q.subject),
                cell(beginning(q.text)),
            ]
        )
    return out.getvalue().encode("utf-8-sig")


def question_lists(
    templates: Templates, digest: Digest, language: str, made: datetime
) -> tuple[QuestionList, QuestionList]:
    """The list as a CSV file, and the same file zipped (for a mail that must stay small)."""
    name = f"{digest.session.code}-questions.csv"
    data = question_list_csv(templates, digest, language)
    count = len(digest.questions)
    plain = QuestionList(Attachment(name, CSV_TYPE, data), count, zipped=False)
    return plain, QuestionList(
        Attachment(name + ".zip", ZIP_TYPE, _zip(name, data, made)), count, zipped=True
    )


def _zip(name: str, data: bytes, made: datetime) -> bytes:
    out = io.BytesIO()
    member = zipfile.ZipInfo(name, date_time=made.timetuple()[:6])
    member.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(member, data, compresslevel=9)
    return out.getvalue()
