"""What attribution lines are made of: dates, times, verbs, openers and names.

The words come from ``vocab``; these patterns are shared by the attribution rules
(``attributions``), the header rules and screens (``headers``) and the last check on answers
(``leftovers``).
"""

from __future__ import annotations

import re

from qa_mailer.replies import vocab

# An attribution never runs longer than this, wrapped or not.
MAX_ATTRIBUTION = 400
VERB = rf"(?:{vocab.alternation(vocab.ATTRIBUTION_VERBS)})(?:\s*\(\w{{1,3}}\)|/\w{{1,3}})?"
# The attribution verb closing the text, then a colon: "... wrote:", "... a écrit :".
VERB_COLON_END = re.compile(rf"(?:^|[\s,\"'>)\]])(?:{VERB})\s*[:：]\s*$")
# The verb first: Thunderbird nb "skrev #1:".
VERB_START = re.compile(rf"^(?:{VERB})\s")
# The verb anywhere in a line, as a whole word.
VERB_INSIDE = re.compile(rf"(?:^|(?<=[\s,\"'>)\]]))(?:{VERB})(?=[\s:：]|$)")
# The verb closing a line framed by dashes, colon optional: "---- John Smith wrote ----".
VERB_DASHED_END = re.compile(rf"(?:^|[\s,\"'>)\]])(?:{VERB})\s*[:：]?\s*$")
# The verb, then a short name without address: "... schrieb QA Mailer:", "... skrev Ana:".
VERB_NAME_COLON_END = re.compile(rf"\s(?:{VERB})\s+[^\s:@<>]+(?:\s+[^\s:@<>]+){{0,3}}\s*[:：]\s*$")
# Bounded like real addresses, so that a search over a long line of letters stays linear.
EMAIL = re.compile(r"[\w.+'-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
# Verbless attributions (Gmail in Russian, Yandex, Mail.ru) end on the address and a colon.
ADDRESS_COLON_END = re.compile(r"(?:[>\])\"»]|@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8})\s*[:：]\s*$")
OPENER = re.compile(
    rf"^(?:(?:{vocab.alternation(vocab.ATTRIBUTION_OPENERS)})\s"
    rf"|(?:{vocab.alternation(vocab.DATE_OPENERS)})\s(?=\d))"
)
# A date at the very start: "01.02.2016", "2016-10-24", "20 окт. 2016", "1 Şub 2016", and
# the South Slavic and Hungarian short forms with spaces, "12. 02. 2024.", "2025. 03. 03.".
DATE_START = re.compile(r"^(?:\d{1,4}[./-]\d{1,2}|\d{1,2}\.?\s+[^\W\d_]{3,}|\d{1,4}\.\s\d{1,2}\.)")
# A time at the very start: "11:00 AM, November 17, 2021, ..." (Outlook for Mac, Spark).
TIME_START = re.compile(r"^\d{1,2}:\d{2}(?:\s?[ap]\.?m\.?)?,?\s")
# A weekday then the day: "Thu, 26 Jun", "пн, 1 февр.", "pon., 1 lut", "понедельник, 6".
WEEKDAY_START = re.compile(r"^[^\W\d_]{2,12}\.?,?\s+\d{1,2}\b")
TIME = re.compile(r"\b\d{1,2}[:.]\d{2}\b")
DATE = re.compile(
    r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b"  # 01.02.2016, 2016-02-01, 2/1/16
    r"|\b\d{1,4}\.\s\d{1,2}\.\s\d{2,4}\b"  # 12. 02. 2024, 2025. 03. 03
    # 1 Feb 2016, 6 октября 2014, 21 de mayo de 2013
    r"|\b\d{1,2}\.?\s+(?:de\s+)?[^\W\d_]{3,12}\.?,?\s+(?:de\s+)?\d{4}\b"
    r"|\b[^\W\d_]{3,12}\.?\s+\d{1,2},?\s+\d{4}\b"  # Feb 1, 2016
    r"|\d{4}年"
)
# A time or a date anywhere.
WHEN = re.compile(f"{TIME.pattern}|{DATE.pattern}")
ISO_DATE_START = re.compile(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}\b")
# What frames a divider or a dashed attribution ("-----Original Message-----").
FRAME = "-–—=_*~ \t"
_MAX_NAME_WORDS = 6
_SENTENCE_MARK = re.compile(r"[!?;:]")
QUOTING = re.compile(rf"^(?:{vocab.alternation(vocab.QUOTING_WORDS)})\s*\(?\s")
_NAME_OPENINGS = "\"'«<“„"


def when(text: str) -> bool:
    """True when ``text`` carries a time of day or a full date."""
    return bool(TIME.search(text) or DATE.search(text))


def closes_attribution(text: str) -> bool:
    """True when ``text`` ends the way attributions end: a verb or an address, then a colon.

    Thunderbird in German, Dutch and the Nordic languages puts the verb before a bare name
    ("Am 03.03.2025 um 10:15 schrieb QA Mailer:"), which counts too.
    """
    if not text.endswith((":", "：")):
        return False
    tail = text[-120:]
    return bool(
        VERB_COLON_END.search(tail)
        or ("@" in text and ADDRESS_COLON_END.search(tail))
        or VERB_NAME_COLON_END.search(tail)
    )


def strong_start(text: str) -> bool:
    return bool(
        OPENER.match(text)
        or DATE_START.match(text)
        or WEEKDAY_START.match(text)
        or TIME_START.match(text)
    )


def short_name(text: str) -> bool:
    words = text.split()
    return len(words) <= _MAX_NAME_WORDS and len(text) <= 60 and not _SENTENCE_MARK.search(text)


GMT_OFFSET = re.compile(r"\bGMT[+-]\d{1,2}(?::?\d{2})?\b")


def looks_like_name(text: str) -> bool:
    """True for "Maria", "Prof. Maria Rossi", "University of Bologna": short, capitalised."""
    words = text.split()
    if not 0 < len(words) <= 5 or text.rstrip()[-1] in ".!?:;,":
        return False
    capitalised = [word for word in words if word[0].isupper()]
    particles = [word for word in words if word.islower() and len(word) <= 3]
    return (
        not any(char.isdigit() for char in text)
        and bool(capitalised)
        and len(capitalised) + len(particles) == len(words)
    )


def starts_like_name(body: str) -> bool:
    first = body.lstrip(" \t*")[:1]
    return first.isupper() or first in _NAME_OPENINGS
