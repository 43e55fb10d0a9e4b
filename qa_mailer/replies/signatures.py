"""Rules for the end of what a replier wrote: signature delimiters and phone/app taglines.

A signature starts at the "-- " delimiter; a tagline is the line a phone or app appends
("Sent from my iPhone", "Отправлено с iPhone", "iPhone'umdan gönderildi", "Get Outlook for
Android"). Both run until the next quoted line or quote header, never further, so that answers
written inline below a signature placed above the quote survive.
"""

from __future__ import annotations

import re
from typing import Protocol

from qa_mailer.replies import vocab
from qa_mailer.replies.lines import MAX_LINE

# Shorter underscore lines are Markdown rules, not a signature's top.
_MIN_RULE = 10
# What a mailing list's footer names: its address, its page, the way to leave it.
_LIST_FOOTER = re.compile(r"@|https?://|www\.|\blist|unsubscribe|abonn|подпис|претплат|pretplat")
# Longer lines are sentences someone wrote, not taglines.
_MAX_TAGLINE = 110

_LINK = re.compile(r"<https?://[^>\s]*>|\(https?://[^)\s]*\)|https?://\S+")
_MARKDOWN_LINK = re.compile(r"\[([^\]]{0,80})\]\([^)]{0,300}\)")
_EDGES = " \t<>()[]*_\"'«»"
_TOKEN = re.compile(r"[\w'’-]+")

_VERB_FIRST = re.compile(
    rf"^(?:{vocab.alternation(vocab.TAGLINE_VERBS)})\s+(?:{vocab.alternation(vocab.TAGLINE_PREPOSITIONS)})\s"
)
# German and Dutch put the verb last: "Von meinem iPhone gesendet".
_VERB_LAST = re.compile(
    r"^(?:von|vom|über|diese nachricht wurde|verzonden|verstuurd)\b.{0,80}"
    r"\b(?:gesendet|verschickt|verzonden|verstuurd)\.?$"
)
# Turkish puts the source in the ablative before the verb: "iPhone'umdan gönderildi".
_TURKISH = re.compile(r"^.{0,80}\S(?:dan|den|tan|ten)\s+gönderildi\.?$")
_FROM_MY = re.compile(r"^from my \S")
_POSSESSIVES = frozenset(vocab.TAGLINE_POSSESSIVES)


def plain(text: str) -> str:
    """The words of a line without links, Markdown link syntax or decorative brackets."""
    return vocab.fold(_unlinked(text))


def _unlinked(text: str) -> str:
    # plain() but for folding.
    text = text[:MAX_LINE]
    # Both patterns need one of these; most lines hold neither, and then nothing changes.
    if "](" in text or "http" in text:
        text = _LINK.sub(" ", _MARKDOWN_LINK.sub(r"\1", text))
    return " ".join(text.split()).strip(_EDGES)


def is_signature_delimiter(body: str) -> bool:
    """True for the "-- " line that opens a signature (also without its trailing space)."""
    return body.rstrip() == "--"


def is_underscore_rule(body: str) -> bool:
    """True for a long line of underscores, which Outlook users put above a signature."""
    stripped = body.strip()
    return len(stripped) >= _MIN_RULE and not stripped.strip("_")


def is_short_underscore_rule(body: str) -> bool:
    """True for "__" up to a Markdown-sized rule, which some list servers put above their
    footer; it opens a signature only above a footer (``classify``)."""
    stripped = body.strip()
    return 2 <= len(stripped) < _MIN_RULE and not stripped.strip("_")


def is_list_footer(lines: list[str]) -> bool:
    """True when the lines under a short rule name a list: an address, a link, "list"."""
    return any(_LIST_FOOTER.search(vocab.fold(line[:MAX_LINE])) for line in lines)


class TaglineRule(Protocol):
    """A way to recognise a tagline."""

    name: str
    description: str

    def check(self, words: str) -> bool:
        """True when ``words`` (from ``plain``) is a tagline."""
        ...


class SentFromDevice:
    name = "sent-from-device"
    description = "'Sent from my iPhone', 'Отправлено с iPhone', 'Poslato sa mog iPhone-a'"

    def check(self, words: str) -> bool:
        return bool(_VERB_FIRST.match(words)) and _names_device(words)


class DeviceSentVerbLast:
    name = "device-sent-verb-last"
    description = "'Von meinem iPhone gesendet', 'iPhone'umdan gönderildi'"

    def check(self, words: str) -> bool:
        return bool(_VERB_LAST.match(words) or _TURKISH.match(words))


class FromMyDevice:
    name = "from-my-device"
    description = "'From my iPhone 6'"

    def check(self, words: str) -> bool:
        return bool(_FROM_MY.match(words)) and _names_device(words) and len(words) < 40


class GetOutlookApp:
    name = "get-outlook-app"
    description = "'Get Outlook for Android' and its translations"

    def check(self, words: str) -> bool:
        tokens = _TOKEN.findall(words)
        has_platform = any(token in {"ios", "android"} for token in tokens)
        return "outlook" in words and has_platform and len(tokens) <= 8


TAGLINE_RULES: tuple[TaglineRule, ...] = (
    SentFromDevice(),
    DeviceSentVerbLast(),
    FromMyDevice(),
    GetOutlookApp(),
)


def is_tagline(body: str) -> bool:
    """True when the line is a phone or app tagline."""
    unlinked = _unlinked(body)
    # fold() never shortens a text but by the U+0307 it drops, so a line this long is no
    # tagline; most lines are, and folding is the dearest step here.
    if len(unlinked) - unlinked.count("\u0307") > _MAX_TAGLINE:
        return False
    words = vocab.fold(unlinked)
    if not words or len(words) > _MAX_TAGLINE:
        return False
    return any(rule.check(words) for rule in TAGLINE_RULES)


# A superset of is_tagline for screening a whole body at once (``unquoted.py``): the plain
# words of a tagline start with one of TAGLINE_STARTS or hold one of TAGLINE_WORDS. A line
# with a link or Markdown link ("http", "](") is always looked at, since plain() rewrites it.
# Keep these in step with TAGLINE_RULES: each rule has its words here.
TAGLINE_STARTS = (
    *vocab.TAGLINE_VERBS,  # SentFromDevice
    *("von", "vom", "über", "diese", "verzonden", "verstuurd"),  # _VERB_LAST
    "from",  # FromMyDevice
)
TAGLINE_WORDS = ("gönderildi", "outlook", "http", "](")  # _TURKISH, GetOutlookApp
# What plain() takes off the start of a line before its words: white space and _EDGES (two
# classes with no character in common, so that the repetition cannot backtrack badly).
TAGLINE_LEAD = rf"(?:[^\S\n]|[{re.escape(''.join(c for c in _EDGES if not c.isspace()))}])*"


def _names_device(words: str) -> bool:
    tokens = set(_TOKEN.findall(words))
    return bool(tokens & _POSSESSIVES) or any(stem in words for stem in vocab.TAGLINE_DEVICE_STEMS)
