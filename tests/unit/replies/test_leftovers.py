"""The last check on an answer before it is sent (issue 9, item 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_mailer.replies.leftovers import find_leftover, leftover_reason

DATA = Path(__file__).resolve().parents[2] / "data" / "replies"

LEFTOVERS = [
    # The case: a quote header the trimming rules did not know, under the last answer.
    ("Od 30 do 60 dana.\n\n12. 02. 2024. u 14:03, Industrial Clusters Q&A VC2 piše:", "header"),
    ("Yes.\n\nMaria Rossi wrote:", "header"),
    ("Yes.\n\nOn 3 March 2025 the QA service wrote:\nHow can a maker join?", "header"),
    ("Yes.\n\nFrom: QA Mailer <qa@conf.example.org>", "header"),
    ("Yes.\n\nSent: Monday, 3 March 2025 10:15", "header"),
    ("Yes.\n\n-----Original Message-----", "header"),
    ("Yes.\n-- \nMaria Rossi", "signature"),
    ("Yes.\n\nSent from my iPhone", "tagline"),
    ("Да.\n\nОтправлено из мобильной Почты Mail.ru", "tagline"),
]


@pytest.mark.parametrize(("answer", "kind"), LEFTOVERS)
def test_history_left_in_an_answer_is_found(answer: str, kind: str) -> None:
    found = find_leftover(answer)
    assert found is not None and kind in found.rule
    reason = leftover_reason(answer)
    assert reason is not None and found.line.strip() in reason


CLEAN = [
    "Yes, as a partner member.",
    "Three steps:\n1. Join the association.\n2. Pay the fee.\n3. Attend a meeting.",
    "See https://example.eu/funds for the list; the deadline is 03.03.2025 at 10:00.",
    "The commission wrote in 2019 that clusters grow by trust.",
    "From the experience of Lombardy: yes.",
    "Sent to all cluster managers in 2024, the survey shows it.",
    "Da: moguće je, preko EEN mreže.",
]


@pytest.mark.parametrize("answer", CLEAN)
def test_a_clean_answer_passes(answer: str) -> None:
    assert find_leftover(answer) is None


def _expected_answers() -> list[str]:
    answers: list[str] = []
    paths = [*DATA.rglob("*.expected.json"), *(DATA / "own_clients" / "expected").glob("*.json")]
    for path in sorted(paths):
        data = json.loads(path.read_text("utf-8"))
        answers.extend(answer["answer"] for answer in data.get("answers", []))
    return answers


def test_no_expected_answer_of_the_corpora_is_held() -> None:
    answers = _expected_answers()
    assert answers
    held = [(answer, leftover_reason(answer)) for answer in answers if leftover_reason(answer)]
    assert held == []
