"""Classification as small named rules, each with a name, a description and a check.

The order in which rules of one kind are tried is declared in one tuple per kind:
``AUTOMATIC_RULES``, ``SESSION_RULES`` and ``COUNTRY_RULES``.
"""

from qa_mailer.classify.rules.automatic import AUTOMATIC_RULES, automatic_reason
from qa_mailer.classify.rules.country import COUNTRY_RULES, CountryContext, choose_country
from qa_mailer.classify.rules.session import SESSION_RULES, SessionContext, choose_session

__all__ = [
    "AUTOMATIC_RULES",
    "COUNTRY_RULES",
    "SESSION_RULES",
    "CountryContext",
    "SessionContext",
    "automatic_reason",
    "choose_country",
    "choose_session",
]
