"""`qa-mailer parse-reply` in plain output shows what each participant would receive."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from qa_mailer.cli import main

QUESTIONS = [
    {"ref": "Q-17", "text": "How can a small furniture maker join an existing cluster abroad?"},
    {"ref": "Q-18", "text": "Which public funds support cluster internationalisation?"},
]


def _run(tmp_path: Path, body: str, questions: list[dict[str, str]] | None = None) -> str:
    reply = tmp_path / "reply.txt"
    reply.write_text(body, encoding="utf-8")
    args = ["parse-reply", str(reply)]
    if questions is not None:
        path = tmp_path / "questions.json"
        path.write_text(json.dumps(questions), encoding="utf-8")
        args[1:1] = ["--questions", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_each_participant_and_their_answer_are_shown(tmp_path: Path) -> None:
    body = (
        "1. As a partner member.\n2. The EEN and Interreg.\n3. Something else.\n\n"
        "On Mon, 3 Mar 2025 at 10:15, QA <qa@conf.example.org> wrote:\n"
        "> [Q-17] How can a small furniture maker join an existing cluster abroad?\n"
        "> [Q-18] Which public funds support cluster internationalisation?\n"
    )
    output = _run(tmp_path, body, QUESTIONS)
    assert (
        "== Q-17: what the participant who asked Q-17 would receive ==\nAs a partner member."
        in (output)
    )
    assert (
        "== Q-18: what the participant who asked Q-18 would receive ==\nThe EEN and Interreg."
        in (output)
    )


def test_an_answer_the_last_check_holds_is_marked(tmp_path: Path) -> None:
    body = "Yes.\n\nOn 3 March 2025 the QA service wrote:\nHow can a small maker join?\n"
    output = _run(tmp_path, body, QUESTIONS[:1])
    assert "== Q-17: what the participant who asked Q-17 would receive ==" in output
    assert "(Held for confirmation, not sent: " in output


def test_an_answer_naming_no_question_of_the_mail_is_not_sent(tmp_path: Path) -> None:
    output = _run(tmp_path, "Q-99: no idea.\nQ-17: as a partner.\n", QUESTIONS)
    assert "== Not sent: this answer names no question of the mail ==\nno idea." in output
    assert "would receive ==\nas a partner." in output
