"""Which country a participant is from, tried in the order of COUNTRY_RULES."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from qa_mailer.addresses import domain_of
from qa_mailer.classify.incoming import Incoming
from qa_mailer.classify.roster import Roster
from qa_mailer.config import CountryConfig


@dataclass(frozen=True)
class CountryContext:
    incoming: Incoming
    countries: tuple[CountryConfig, ...]
    roster: Roster


class CountryRule:
    name: ClassVar[str]
    description: ClassVar[str]

    def check(self, context: CountryContext) -> str | None:
        raise NotImplementedError


class RosterEntry(CountryRule):
    name = "roster"
    description = "The participant is on the roster, which gives their country."

    def check(self, context: CountryContext) -> str | None:
        participant = context.roster.get(context.incoming.sender)
        return participant.country if participant else None


class SenderDomain(CountryRule):
    name = "sender-domain"
    description = "The sender's domain ends in a country's domain (.bg, .hr, .rs, .tr, .ru)."

    def check(self, context: CountryContext) -> str | None:
        domain = domain_of(context.incoming.sender)
        for country in context.countries:
            if any(domain == d or domain.endswith("." + d) for d in country.domains):
                return country.code
        return None


class SubjectCountryTag(CountryRule):
    name = "subject-tag"
    description = "A country code in brackets in the subject: [BG], (HR)."

    def check(self, context: CountryContext) -> str | None:
        codes = {c.code for c in context.countries}
        for match in re.finditer(r"[\[(]([A-Za-z]{2})[\])]", context.incoming.mail.subject):
            if match.group(1).upper() in codes:
                return match.group(1).upper()
        return None


COUNTRY_RULES: tuple[CountryRule, ...] = (RosterEntry(), SenderDomain(), SubjectCountryTag())


def choose_country(context: CountryContext) -> tuple[str | None, str | None]:
    """(country code, rule name), or (None, None): unassigned, for organisers to sort."""
    for rule in COUNTRY_RULES:
        code = rule.check(context)
        if code is not None:
            return code, rule.name
    return None, None
