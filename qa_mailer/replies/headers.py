"""Rules that recognise the header a mail client writes above quoted mail.

Each rule looks at the lines from one position and says how many of them form a header: an
attribution ("On <date>, <name> wrote:" in its many languages and wrappings), an Outlook or
Android field block ("From: / Sent: / To: / Subject:"), a dashed divider ("-----Original
Message-----"), or the mark ``html_quotes`` leaves where HTML structure showed a quote.

The rules are small named classes in the order of ``HEADER_RULES``; the first that matches wins.
Field blocks and dividers are here; the attribution rules are in ``attributions`` (built from
the patterns in ``attribution_text``), the lines they look at in ``window``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa_mailer.replies import vocab
from qa_mailer.replies.attribution_text import (
    EMAIL,
    FRAME,
    ISO_DATE_START,
    OPENER,
    TIME,
    VERB_START,
    closes_attribution,
    starts_like_name,
    strong_start,
    when,
)
from qa_mailer.replies.attributions import (
    AddressAttribution,
    Attribution,
    DashedAttribution,
    DatedAddressLine,
    NameFirstAttribution,
    QuotingAttribution,
    VerblessDatedAttribution,
)
from qa_mailer.replies.lines import HEADER_MARK, MAX_LINE, Line
from qa_mailer.replies.window import (
    HeaderRule,
    Window,
    window,
)

_RULE = "-–—="
_MAX_FRAMED_PHRASE = 80
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)?")
_MESSAGE_NOUNS = frozenset(vocab.MESSAGE_NOUNS)
# Nouns long enough to be told apart at the end of a compound ("mail" ends too many words).
_LONG_MESSAGE_NOUNS = tuple(noun for noun in _MESSAGE_NOUNS if len(noun) >= 7)
# A compound has at least four letters before its noun.
_MIN_COMPOUND = 11
_FIELD_CATEGORY = {
    label: category for category, labels in vocab.HEADER_FIELDS.items() for label in labels
}
# "From:", "*From:*", "**Sent:**", "À :", each at the start of a line.
# Possessive white space: a line of spaces is refused once, not at every split of them.
_FIELD = re.compile(
    rf"^\s*+(?:\*{{1,2}}\s*+)?({vocab.alternation(_FIELD_CATEGORY)})\s*(?:\*{{1,2}}\s*)?[:：]"
)
# The same labels inside one line, as Outlook writes a header when it cannot break lines.
_INLINE_FIELD = re.compile(
    rf"\s(?:\*{{1,2}})?({vocab.alternation(_FIELD_CATEGORY)})\s*(?:\*{{1,2}}\s*)?:"
)
_MAIN_CATEGORIES = frozenset({"from", "sent", "date", "subject"})
_MAX_BLOCK_LEAD = 60
# A field's value may wrap onto this many lines before the next field.
_MAX_CONTINUATION = 2


def field_category(text: str) -> str | None:
    """The group of a header field line ("from", "sent", ...), or None if it is not one."""
    match = _FIELD.match(vocab.fold(text[:MAX_LINE]))
    return _FIELD_CATEGORY.get(" ".join(match.group(1).split())) if match else None


def is_rule_line(text: str) -> bool:
    """True for a line drawn with dashes, underscores or equals signs, nothing else."""
    stripped = text.strip(" \t*")
    return len(stripped) >= 4 and not stripped.strip("-_=~–—")


def is_block_lead(text: str) -> bool:
    """True for a short dated line right above a field block: its first field, with a label
    we don't know ("Message du 03/03/25 10:15" above "De :", as Orange's webmail writes)."""
    stripped = text.strip()
    return (
        len(stripped) <= _MAX_BLOCK_LEAD
        and len(stripped.split()) <= 6
        and not stripped.endswith((".", "!", "?"))
        and bool(TIME.search(stripped))
        and when(stripped)
    )


def is_forward_intro(text: str) -> bool:
    """True for "Begin forwarded message:" and the like."""
    folded = vocab.fold(text.strip())
    return (
        len(folded) <= 80
        and folded.endswith((":", "："))
        and any(stem in folded for stem in vocab.FORWARD_STEMS)
    )


class HtmlMark:
    name = "html-mark"
    description = "the mark html_quotes.py leaves where HTML structure showed a quote header"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        return start if lines[start].body.strip() == HEADER_MARK else None


class DashedDivider:
    name = "dashed-divider"
    description = "'-----Original Message-----' and translations: a message noun between dashes"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        phrase = framed_phrase(found.texts[0])
        if phrase is None:
            return None
        # "--- message from the chair ---" is someone's heading; a divider also says the
        # message is the original or a forwarded one.
        # Horde IMP names the sender instead: "----- Message from Ana <ana@x.org> ---------".
        kind = any(stem in phrase for stem in (*vocab.ORIGINAL_STEMS, *vocab.FORWARD_STEMS))
        kind = kind or EMAIL.search(phrase) is not None
        return start if kind and any(map(_names_message, _WORD.findall(phrase))) else None


def _names_message(word: str) -> bool:
    # German and Swedish write one compound word: "Originalnachricht", "Original-Nachricht",
    # "Originalmeddelande" (Roundcube de_DE, Thunderbird de, K-9 Mail sv).
    return word in _MESSAGE_NOUNS or (
        len(word) >= _MIN_COMPOUND and word.endswith(_LONG_MESSAGE_NOUNS)
    )


def framed_phrase(text: str) -> str | None:
    """The words between two runs of dashes ("----- Original Message -----"), or None."""
    # Plain string work: a regex for "dashes, anything, dashes" backtracks badly on a long
    # line of dashes.
    phrase = text.strip(FRAME)
    if not phrase or len(phrase) > _MAX_FRAMED_PHRASE:
        return None
    left = text[: len(text) - len(text.lstrip(FRAME))]
    right = text[len(text.rstrip(FRAME)) :]
    if sum(char in _RULE for char in left) < 2 or sum(char in _RULE for char in right) < 2:
        return None
    return phrase


class FieldBlock:
    name = "field-block"
    description = "Outlook/Android 'From: / Sent: / To: / Subject:' fields in any language"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        first = lines[start]
        category = field_category(first.body)
        if category is None:
            return None
        if category == "from" and _inline_categories(first.body) >= 2:
            return start
        categories = {category}
        end = start
        continuation = 0
        for index in range(start + 1, min(len(lines), start + 30)):
            line = lines[index]
            if line.blank or line.depth != first.depth:
                break
            category = field_category(line.body)
            if category is not None:
                categories.add(category)
                end, continuation = index, 0
            elif continuation < _MAX_CONTINUATION:
                continuation += 1
            else:
                break
        main = categories & _MAIN_CATEGORIES
        return end if main and len(categories - {"other"}) >= 2 else None


def _inline_categories(text: str) -> int:
    found = _INLINE_FIELD.findall(vocab.fold(text[:MAX_LINE]))
    return len({_FIELD_CATEGORY.get(" ".join(label.split())) for label in found} - {"from"})


HEADER_RULES: tuple[HeaderRule, ...] = (
    HtmlMark(),
    DashedDivider(),
    FieldBlock(),
    DashedAttribution(),
    Attribution(),
    AddressAttribution(),
    DatedAddressLine(),
    NameFirstAttribution(),
    QuotingAttribution(),
    VerblessDatedAttribution(),
)


@dataclass(frozen=True)
class HeaderMatch:
    """A quote header found in the lines."""

    end: int  # index of its last line
    # False for an attribution with neither time nor address ("On 3 March 2025 X wrote:"):
    # it may be someone's sentence, so it only counts when a quote follows it.
    certain: bool


_CERTAIN_RULES = frozenset({HtmlMark.name, DashedDivider.name, FieldBlock.name})
# Rules whose lines read like a sentence as easily ("Maria writes:", "03.03.2025 10:15,
# Agenda:"): without an address they count only above a quote, time or not.
_WEAK_RULES = frozenset(
    {NameFirstAttribution.name, QuotingAttribution.name, VerblessDatedAttribution.name}
)


def match_header(lines: Sequence[Line], start: int) -> HeaderMatch | None:
    """The quote header starting at ``start``, or None."""
    line = lines[start]
    if line.blank or not may_start_header(line.body):
        return None
    found = window(lines, start, line.depth)
    if not found.indexes:
        return None
    for rule in HEADER_RULES:
        end = rule.check(lines, start, found)
        if end is not None:
            text = " ".join(part.raw[:MAX_LINE] for part in lines[start : end + 1])
            return HeaderMatch(end, _certain(rule.name, text))
    return None


def _certain(rule: str, text: str) -> bool:
    if rule in _CERTAIN_RULES:
        return True
    if rule in _WEAK_RULES:
        return "@" in text
    if rule == Attribution.name and not text.rstrip(FRAME).endswith((":", "：")):
        # An attribution without its colon.
        return False
    return "@" in text or bool(TIME.search(text))


def may_start_header(body: str) -> bool:
    """True when a quote header could start with this line (its body, markers removed).

    What every rule needs of the first line, checked before the window is built: most lines
    of a mail are sentences that no rule could start with.
    """
    head = vocab.fold(body[:MAX_LINE].lstrip(" \t*"))
    if not head.strip(FRAME):
        # A signature's "--" or a rule of dashes: every rule needs words, a date or an
        # address besides the frame (a divider's are between the dashes).
        return False
    return (
        head.startswith(("-", "=", "_", "~", HEADER_MARK))
        or "@" in head
        or strong_start(head)
        or bool(ISO_DATE_START.match(head))
        # field_category(head), without folding the folded head again: every character of
        # a folded text folds to itself.
        or _FIELD.match(head[:MAX_LINE]) is not None
        # NameFirstAttribution: a name with a capital, a colon at the end (the date-first
        # VerblessDatedAttribution starts strong).
        or (
            head.rstrip().endswith(FIELD_COLONS)
            and (starts_like_name(body) or VERB_START.match(head) is not None)
        )
    )


# A superset of may_start_header for screening a whole body at once (``screens.py``): a line
# it holds for shows, in its folded text after any " \t*", one of HEADER_STARTS or a field
# label (FIELD_START), or "@" anywhere. Keep them in step: each clause there has its part here.
HEADER_STARTS = "|".join(
    (
        rf"[-=_~{HEADER_MARK}]",
        # DATE_START and ISO_DATE_START
        r"\d",
        OPENER.pattern.removeprefix("^"),
        # WEEKDAY_START: a word of at most 14 characters (12 letters, a dot and a comma) and
        # a digit after white space; its closing \b is left out, which the line's next
        # character may undo. Not spelt out as letters, which costs a regex five times more.
        r"\S{2,14}+\s+\d",
    )
)
# field_category: a label and its colon. Screens look for it only on lines with a colon.
FIELD_START = _FIELD.pattern.removeprefix("^")
FIELD_COLONS = (":", "：")


def find_glued_attribution(text: str) -> int | None:
    """Where an attribution starts inside a line that began with the reply ("ok On ... wrote:").

    Returns the offset of the attribution, or None when the line holds none after some text.
    """
    head = text[:MAX_LINE]
    if not head.rstrip().endswith((":", "：")):
        return None
    folded = vocab.fold_in_place(head)
    if strong_start(folded.lstrip(FRAME)):
        return None
    for match in _GLUED_OPENER.finditer(folded):
        suffix = folded[match.start() :]
        if suffix and OPENER.match(suffix) and when(suffix) and closes_attribution(suffix):
            prefix = head[: match.start()].strip(FRAME)
            return match.start() if prefix else None
    return None


_GLUED_OPENER = re.compile(rf"(?<=[\s\-])(?:{vocab.alternation(vocab.ATTRIBUTION_OPENERS)})\s")
