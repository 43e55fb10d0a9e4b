"""An expert who gets the questions in Italian (shipped or an organiser's own wording) answers
inline, and every participant gets their answer: the reply parser knows our wording from the
templates themselves, not from English patterns."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import OutboxKind
from qa_mailer.db.engine import session_factory
from qa_mailer.route.batch import BatchDispatcher
from qa_mailer.templates import Templates
from tests.helpers import EXPERT, FakeClock, make_mail, write_config
from tests.integration.test_pipeline import Desk, make_desk, plain, reply_to

QUESTIONS = [
    ("Ana Horvat <ana@drvo.example.hr>", "Who should lead a new cluster?", "Un facilitatore."),
    ("Petar Ivanov <petar@mebeli.example.bg>", "How do rivals learn trust?", "Piccoli progetti."),
    ("Ivan <ivan@zavod.example.ru>", "What role do universities play?", "Formano le persone."),
]

# An organiser's own Italian wording: instructions before and after every question, a line
# of its own between the anchor and the question, a closing paragraph.
OVERRIDE = """{% set subject %}[{{ session.code }}] Domande per Lei{% endset %}
Gentile Professore, ecco {{ questions | length }} domande della sessione {{ session.code }}.
La preghiamo di scrivere ogni risposta subito sotto la domanda.
{% for q in questions %}

[{{ q.ref }}] Domanda di {{ q.participant }} ({{ q.country }}):
{{ q.text }}
Scriva qui sotto la risposta per {{ q.participant }}.
{% endfor %}

Grazie di cuore per il Suo tempo.
Lo staff del programma {{ service_name }}
"""


async def italian_desk(
    engine: AsyncEngine, tmp_path: Path, database_url: str, override: bool
) -> tuple[Desk, BatchDispatcher]:
    service = {"name": "Clusters Q&A", "address": "qa@clusters.example.org"}
    if override:
        folder = tmp_path / "my-templates" / "it"
        folder.mkdir(parents=True)
        (folder / "to_expert.txt").write_text(OVERRIDE, encoding="utf-8")
        service["templates"] = str(folder.parent)
    config = write_config(
        tmp_path,
        database_url,
        service=service,
        programme={"expert_mail": "batch", "batch_minutes": 60, "expert_language": "it"},
    )
    desk = await make_desk(config, engine, FakeClock())
    for sender, text, _ in QUESTIONS:
        await desk.receive(make_mail(sender=sender, subject="[VC1] Question", body=text))
    return desk, BatchDispatcher(config, session_factory(engine), Templates.of(config), desk.clock)


def inline_reply(route: EmailMessage) -> str:
    """The expert's reply: the whole mail quoted, each answer typed below its question's block."""
    lines = plain(route).rstrip("\n").split("\n")
    out = ["Buongiorno, ecco le risposte.", "", f"Il 3 dic 2026, {route['From']} ha scritto:"]
    for line in lines:
        out.append(f"> {line}" if line else ">")
        for _, text, answer in QUESTIONS:
            if line == text:
                out.extend(["", answer, ""])
    out.extend(["", "Cordiali saluti,", "Prof. Esperto"])
    return "\n".join(out) + "\n"


@pytest.mark.asyncio
@pytest.mark.parametrize("override", [False, True], ids=["shipped", "organisers-own"])
async def test_an_italian_expert_answers_three_questions_inline(
    engine: AsyncEngine, tmp_path: Path, database_url: str, override: bool
) -> None:
    desk, batches = await italian_desk(engine, tmp_path, database_url, override)
    await batches.send_due(now=True)
    [route] = await desk.outbox(OutboxKind.ROUTE)
    assert ("Domande per Lei" if override else "3 domande") in str(route["Subject"])
    await desk.receive(reply_to(route, inline_reply(route), sender=EXPERT))
    answers = {str(m["To"]): plain(m) for m in await desk.outbox(OutboxKind.ANSWER)}
    assert set(answers) == {address(sender) for sender, _, _ in QUESTIONS}
    for sender, _, answer in QUESTIONS:
        mail = answers[address(sender)]
        assert answer in mail
        others = [a for _, _, a in QUESTIONS if a != answer]
        # Nothing of the other answers, of our wording, or of the signature in this one.
        assert not any(other in mail for other in others)
        for wording in ("Scriva", "Grazie di cuore", "Gentile Professore", "Prof. Esperto"):
            assert wording not in mail.split("\n\n", 2)[1], (wording, mail)


def address(sender: str) -> str:
    return sender.rpartition("<")[2].rstrip(">")


def test_our_wording_is_learnt_from_the_templates_in_every_language(tmp_path: Path) -> None:
    from qa_mailer.replies import template
    from qa_mailer.wording import wording_patterns

    folder = tmp_path / "my-templates" / "it"
    folder.mkdir(parents=True)
    (folder / "to_expert.txt").write_text(OVERRIDE, encoding="utf-8")
    config = write_config(
        tmp_path,
        "sqlite+aiosqlite:///unused.db",
        service={
            "name": "Clusters Q&A",
            "address": "qa@clusters.example.org",
            "templates": str(folder.parent),
        },
    )
    lines = {
        "override": ["Scriva qui sotto la risposta per Ana Horvat."],
        "override, wrapped by a client": [
            "La preghiamo di scrivere ogni risposta",
            "subito sotto la domanda.",
        ],
        "shipped receipt": ["Domande ancora aperte: 4."],
        "shipped English": ["Asked 2026-12-03 10:00 UTC, written in Croatian."],
    }
    template.learn(())
    try:
        assert not any(template.is_template(text) for text in lines.values())
        template.learn(wording_patterns(config, Templates.of(config)))
        for what, text in lines.items():
            assert template.is_template(text), what
        # The expert's own words are not ours, even in the same language.
        assert not template.is_template(["Scriva pure: la risposta è sì, con un facilitatore."])
        assert not template.is_template(["Asked by the chamber, the firms must lead it."])
    finally:
        template.learn(())
