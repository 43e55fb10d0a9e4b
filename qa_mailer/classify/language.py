"""The language a participant is written to.

Interim: the roster's language, else the country's, else English. The detection of the
language a question is written in comes with issue8-detect, which replaces this module.
"""

from __future__ import annotations

from qa_mailer.config import LANGUAGES

COUNTRY_LANGUAGES = {"BG": "bg", "HR": "hr", "RS": "sr", "TR": "tr", "RU": "ru"}


def language_for(text: str, country: str | None, roster_language: str | None) -> str:
    """The roster's language if it is one we write in, else the country's, else English."""
    if roster_language in LANGUAGES:
        return roster_language
    return COUNTRY_LANGUAGES.get(country or "", "en")
