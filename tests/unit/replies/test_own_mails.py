"""Our own reply mails in six languages (tests/data/replies/own, see its README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qa_mailer.replies import parse_reply
from qa_mailer.replies.files import load_questions, load_reply_file, parsed_reply_to_json

OWN = Path(__file__).resolve().parents[2] / "data" / "replies" / "own"
CASES = sorted(path for path in OWN.iterdir() if path.suffix in {".txt", ".html", ".eml"})


def _expected(case: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OWN / f"{case.stem}.expected.json").read_text("utf-8"))
    return data


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_with_questions(case: Path) -> None:
    expected = _expected(case)
    questions = load_questions(OWN / "questions" / f"{expected['questions']}.json")
    text, html = load_reply_file(case)
    got = parsed_reply_to_json(parse_reply(text, html, questions))
    for key in ("reply", "new_text", "preamble", "answers"):
        assert got[key] == expected[key], key


@pytest.mark.parametrize("case", CASES, ids=[case.stem for case in CASES])
def test_without_questions(case: Path) -> None:
    expected = _expected(case)
    text, html = load_reply_file(case)
    got = parsed_reply_to_json(parse_reply(text, html))
    for key in ("reply", "new_text", "preamble"):
        assert got[key] == expected[key], key
    answers = [{"ref": answer["ref"], "answer": answer["answer"]} for answer in got["answers"]]
    assert answers == expected["answers_without_questions"]


def test_every_language_and_form_is_covered() -> None:
    names = {case.stem for case in CASES}
    for language in ("ru_", "bg_", "sr_cyrl_", "sr_latn_", "hr_", "tr_", "en_"):
        assert any(name.startswith(language) for name in names), language
    assert {case.suffix for case in CASES} == {".txt", ".html", ".eml"}
    assert all((OWN / f"{case.stem}.expected.json").exists() for case in CASES)
