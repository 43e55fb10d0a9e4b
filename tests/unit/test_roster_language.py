"""The roster's optional language column: the organisers' word on a participant's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_mailer.classify.language import language_for
from qa_mailer.classify.roster import load_roster
from qa_mailer.config import DEFAULT_COUNTRIES, ConfigError


def test_the_roster_language_wins_over_the_question_and_the_country(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(
        "email,name,country,language\n"
        "milan@firm.example.rs,Milan,RS,SR-latn\n"
        "ana@firm.example.hr,Ana,HR,\n",
        encoding="utf-8",
    )
    roster = load_roster(path, DEFAULT_COUNTRIES)
    milan, ana = roster.get("milan@firm.example.rs"), roster.get("ana@firm.example.hr")
    assert milan is not None and ana is not None
    assert (milan.language, ana.language) == ("sr-Latn", "")
    # Written in Russian, but the roster says Serbian in Latin script.
    assert language_for("Как кластер помогает экспорту?", "RS", milan.language) == "sr-Latn"
    assert language_for("Kako klaster pomaže izvozu namještaja?", "HR", ana.language) == "hr"


def test_an_unknown_roster_language_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text("email,country,language\na@b.example.hr,HR,klingon\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"roster.csv:2: language: expected one of en, bg"):
        load_roster(path, DEFAULT_COUNTRIES)
