"""The roster of participants: a CSV of email, name, country, organisation, city."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from qa_mailer.addresses import is_address, normalise
from qa_mailer.config import LANGUAGES, ConfigError, CountryConfig

REQUIRED_COLUMNS = ("email", "country")
OPTIONAL_COLUMNS = ("name", "organisation", "city", "language")


@dataclass(frozen=True)
class Participant:
    email: str
    name: str
    country: str
    organisation: str
    city: str
    # The language to write to them in ("" : chosen from their mail and country).
    language: str = ""


class Roster:
    """Participants by address."""

    def __init__(self, participants: Mapping[str, Participant] | None = None):
        self._participants = dict(participants or {})

    def get(self, address: str) -> Participant | None:
        return self._participants.get(normalise(address))

    def __len__(self) -> int:
        return len(self._participants)

    def replace(self, other: Roster) -> None:
        """Take ``other``'s participants: every stage holding this roster sees the new one."""
        self._participants = dict(other._participants)


def load_roster(path: Path | None, countries: tuple[CountryConfig, ...]) -> Roster:
    """Read the roster; a missing column, bad address or unknown country names file and line."""
    if path is None:
        return Roster()
    by_name = {c.name.lower(): c.code for c in countries} | {
        c.code.lower(): c.code for c in countries
    }
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip().lower() for c in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ConfigError(
                    f"{path}: the roster has no {', '.join(missing)} column (columns: {columns})"
                )
            participants: dict[str, Participant] = {}
            for row in reader:
                line = reader.line_num
                values = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                email = values.get("email", "")
                if not is_address(email):
                    raise ConfigError(
                        f"{path}:{line}: email: expected an e-mail address, got {email!r}"
                    )
                country = by_name.get(values.get("country", "").lower())
                if country is None:
                    known = ", ".join(c.code for c in countries)
                    raise ConfigError(
                        f"{path}:{line}: country: expected one of {known}, got {values.get('country')!r}"
                    )
                language = _language(values.get("language", ""))
                if language is None:
                    raise ConfigError(
                        f"{path}:{line}: language: expected one of {', '.join(LANGUAGES)}, "
                        f"got {values.get('language')!r}"
                    )
                participants[normalise(email)] = Participant(
                    email=normalise(email),
                    name=values.get("name", ""),
                    country=country,
                    organisation=values.get("organisation", ""),
                    city=values.get("city", ""),
                    language=language,
                )
    except FileNotFoundError:
        raise ConfigError(f"{path}: roster file not found (programme.roster)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the roster is not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise ConfigError(f"{path}: not a readable CSV file ({exc})") from None
    return Roster(participants)


def _language(value: str) -> str | None:
    """A roster language as the service writes it ("sr-latn" -> "sr-Latn"); "" for none."""
    if not value:
        return ""
    by_folded = {language.lower(): language for language in LANGUAGES}
    return by_folded.get(value.strip().lower().replace("_", "-"))
