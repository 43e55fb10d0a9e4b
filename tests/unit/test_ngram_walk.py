"""py3langid's n-gram count done with numpy (classify/ngram_walk.py) against its own loop."""

from __future__ import annotations

import csv
from array import array
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier, visit_counts

from qa_mailer.classify.language import DETECTOR_LANGUAGES, _identifier
from qa_mailer.classify.ngram_walk import MAX_DEPTH, VECTOR_WALK_BYTES, _Walk

QUESTIONS = Path(__file__).resolve().parent.parent / "data" / "languages" / "questions.tsv"


def _texts() -> list[str]:
    """Long texts in every language of the set (its questions run together), and short ones."""
    with QUESTIONS.open(encoding="utf-8") as file:
        rows = list(csv.reader(file, delimiter="\t"))
    by_language: dict[str, list[str]] = {}
    for language, _, text in rows:
        by_language.setdefault(language, []).append(text)
    long = [
        " ".join(texts[start : start + count])
        for texts in by_language.values()
        for start in range(0, len(texts), 7)
        for count in (5, 14)
    ]
    return long + [text for _, _, text in rows]


@pytest.fixture(scope="module")
def plain() -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([code for code in DETECTOR_LANGUAGES if code in identifier.labels])
    return identifier


def test_the_counts_are_those_of_py3langids_loop_in_its_order(plain: LanguageIdentifier) -> None:
    walk = _identifier()._walk
    assert walk is not None, "the shipped model is walked with numpy"
    texts = [plain._encode(text) for text in _texts()]
    assert sum(len(text) >= VECTOR_WALK_BYTES for text in texts) >= 50
    for text in texts:
        expected = visit_counts(plain.tk_nextmove, plain._rowbase, plain.tk_output, text) or {}
        features, counts = walk.counts(text)
        assert list(zip(features.tolist(), counts.tolist(), strict=True)) == list(expected.items())


def test_the_scores_are_py3langids_to_the_last_bit(plain: LanguageIdentifier) -> None:
    ours = _identifier()
    for text in [*_texts(), "", "?!", "1234 5678 " * 40]:
        assert np.array_equal(ours._decide(text), plain._decide(text)), text
        assert ours.rank(text) == plain.rank(text)


def _chain(pattern: bytes) -> SimpleNamespace:
    """A py3langid-like automaton that finds ``pattern`` (with no repeated letter) as feature 0."""
    rows = []
    for depth in range(len(pattern) + 1):
        row = [1 if letter == pattern[0] else 0 for letter in range(256)]
        if depth < len(pattern):
            row[pattern[depth]] = depth + 1
        rows.append(row)
    output = [-1] * len(pattern) + [0]
    return SimpleNamespace(
        tk_nextmove=array("I", [state for row in rows for state in row]),
        tk_row=list(range(len(rows))),
        tk_output=output,
    )


def test_a_small_automaton_is_walked_to_its_depth() -> None:
    walk = _Walk.of(_chain(b"abc"))
    assert walk is not None and walk._depth == 3
    features, counts = walk.counts(b"xabcabcabxab" + b"c" * 300)
    assert features.tolist() == [0] and counts.tolist() == [3]
    features, counts = walk.counts(b"ab ca bc " * 40)
    assert features.size == 0 and counts.size == 0


def test_an_automaton_it_cannot_walk_is_left_to_the_loop() -> None:
    deep = bytes(range(65, 65 + MAX_DEPTH + 1))
    assert _Walk.of(_chain(deep)) is None
    assert _Walk.of(SimpleNamespace(tk_nextmove=array("I", [0] * 256))) is None
    broken = _chain(b"abc")
    broken.tk_row = [0, 1, 2, 7]  # a row past the table's end
    assert _Walk.of(broken) is None
