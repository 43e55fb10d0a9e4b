"""Rules that recognise the header a mail client writes above quoted mail.

Each rule looks at the lines from one position and says how many of them form a header: an
attribution ("On <date>, <name> wrote:" in its many languages and wrappings), an Outlook or
Android field block ("From: / Sent: / To: / Subject:"), a dashed divider ("-----Original
Message-----"), or the mark ``html_quotes`` leaves where HTML structure showed a quote.

The rules are small named classes in the order of ``HEADER_RULES``; the first that matches wins.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, overload

from qa_mailer.replies import vocab
from qa_mailer.replies.lines import HEADER_MARK, MAX_LINE, Line

# An attribution never runs longer than this, wrapped or not.
_MAX_ATTRIBUTION = 400
# ... nor over more lines than this (Polymail: name, "<", "mailto:...", "> wrote:").
_MAX_WINDOW_LINES = 4
_MAX_WINDOW_SPAN = 6


_VERB = rf"(?:{vocab.alternation(vocab.ATTRIBUTION_VERBS)})(?:\s*\(\w{{1,3}}\)|/\w{{1,3}})?"
# The attribution verb closing the text, then a colon: "... wrote:", "... a écrit :".
_VERB_COLON_END = re.compile(rf"(?:^|[\s,\"'>)\]])(?:{_VERB})\s*[:：]\s*$")
# The verb first: Thunderbird nb "skrev #1:".
_VERB_START = re.compile(rf"^(?:{_VERB})\s")
# The verb anywhere in a line, as a whole word.
_VERB_INSIDE = re.compile(rf"(?:^|(?<=[\s,\"'>)\]]))(?:{_VERB})(?=[\s:：]|$)")
# The verb closing a line framed by dashes, colon optional: "---- John Smith wrote ----".
_VERB_DASHED_END = re.compile(rf"(?:^|[\s,\"'>)\]])(?:{_VERB})\s*[:：]?\s*$")
# The verb, then a short name without address: "... schrieb QA Mailer:", "... skrev Ana:".
_VERB_NAME_COLON_END = re.compile(
    rf"\s(?:{_VERB})\s+[^\s:@<>]+(?:\s+[^\s:@<>]+){{0,3}}\s*[:：]\s*$"
)
# Bounded like real addresses, so that a search over a long line of letters stays linear.
_EMAIL = re.compile(r"[\w.+'-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
# Verbless attributions (Gmail in Russian, Yandex, Mail.ru) end on the address and a colon.
_ADDRESS_COLON_END = re.compile(r"(?:[>\])\"»]|@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8})\s*[:：]\s*$")
_OPENER = re.compile(
    rf"^(?:(?:{vocab.alternation(vocab.ATTRIBUTION_OPENERS)})\s"
    rf"|(?:{vocab.alternation(vocab.DATE_OPENERS)})\s(?=\d))"
)
# A date at the very start: "01.02.2016", "2016-10-24", "20 окт. 2016", "1 Şub 2016", and
# the South Slavic and Hungarian short forms with spaces, "12. 02. 2024.", "2025. 03. 03.".
_DATE_START = re.compile(r"^(?:\d{1,4}[./-]\d{1,2}|\d{1,2}\.?\s+[^\W\d_]{3,}|\d{1,4}\.\s\d{1,2}\.)")
# A time at the very start: "11:00 AM, November 17, 2021, ..." (Outlook for Mac, Spark).
_TIME_START = re.compile(r"^\d{1,2}:\d{2}(?:\s?[ap]\.?m\.?)?,?\s")
# A weekday then the day: "Thu, 26 Jun", "пн, 1 февр.", "pon., 1 lut", "понедельник, 6".
_WEEKDAY_START = re.compile(r"^[^\W\d_]{2,12}\.?,?\s+\d{1,2}\b")
_TIME = re.compile(r"\b\d{1,2}[:.]\d{2}\b")
_DATE = re.compile(
    r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b"  # 01.02.2016, 2016-02-01, 2/1/16
    r"|\b\d{1,4}\.\s\d{1,2}\.\s\d{2,4}\b"  # 12. 02. 2024, 2025. 03. 03
    # 1 Feb 2016, 6 октября 2014, 21 de mayo de 2013
    r"|\b\d{1,2}\.?\s+(?:de\s+)?[^\W\d_]{3,12}\.?,?\s+(?:de\s+)?\d{4}\b"
    r"|\b[^\W\d_]{3,12}\.?\s+\d{1,2},?\s+\d{4}\b"  # Feb 1, 2016
    r"|\d{4}年"
)
# A time or a date anywhere.
_WHEN = re.compile(f"{_TIME.pattern}|{_DATE.pattern}")
_ISO_DATE_START = re.compile(r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}\b")
# What frames a divider or a dashed attribution ("-----Original Message-----").
_FRAME = "-–—=_*~ \t"
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
# An attribution that starts with the sender's name: the line, the date after the verb, and
# the words of the name.
_MAX_NAME_FIRST = 160
_MAX_NAME_FIRST_DATE = 60
_MAX_NAME_WORDS = 6
_SENTENCE_MARK = re.compile(r"[!?;:]")
_QUOTING = re.compile(rf"^(?:{vocab.alternation(vocab.QUOTING_WORDS)})\s*\(?\s")
_NAME_OPENINGS = "\"'«<“„"
_MAX_BLOCK_LEAD = 60
# A field's value may wrap onto this many lines before the next field.
_MAX_CONTINUATION = 2


def when(text: str) -> bool:
    """True when ``text`` carries a time of day or a full date."""
    return bool(_TIME.search(text) or _DATE.search(text))


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
        and bool(_TIME.search(stripped))
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


@dataclass(frozen=True)
class Window:
    """Up to a few non-blank lines from a position, at one quote depth, markers removed."""

    indexes: tuple[int, ...]
    texts: Sequence[str]  # folded (vocab.fold)


def window(lines: Sequence[Line], start: int, depth: int) -> Window:
    """Collect the lines an attribution starting at ``start`` could span."""
    indexes: list[int] = []
    for index in range(start, min(len(lines), start + _MAX_WINDOW_SPAN)):
        line = lines[index]
        if line.depth < depth:
            break
        if line.blank:
            continue
        indexes.append(index)
        if len(indexes) == _MAX_WINDOW_LINES:
            break
    return Window(tuple(indexes), _WindowTexts(lines, tuple(indexes), depth))


class _WindowTexts(Sequence[str]):
    """The folded texts of a window's lines, each made when a rule first reads it.

    Most windows are refused on their first line; folding the others too was most of the
    cost of looking for a header.
    """

    def __init__(self, lines: Sequence[Line], indexes: tuple[int, ...], depth: int) -> None:
        self._lines = lines
        self._indexes = indexes
        self._depth = depth
        self._made: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._indexes)

    @overload
    def __getitem__(self, position: int) -> str: ...
    @overload
    def __getitem__(self, position: slice) -> Sequence[str]: ...
    def __getitem__(self, position: int | slice) -> str | Sequence[str]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        position = range(len(self))[position]
        if position not in self._made:
            self._made[position] = self._text(self._lines[self._indexes[position]])
        return self._made[position]

    def _text(self, line: Line) -> str:
        # Polymail's "> wrote:" sits one level deeper than the rest of its attribution, so
        # only the markers of the header's own depth are taken off.
        raw = line.raw[:MAX_LINE]
        text = raw if self._depth == 0 else _markers(self._depth).sub("", raw)
        return vocab.fold(text.strip())


@functools.cache
def _markers(depth: int) -> re.Pattern[str]:
    return re.compile(rf"^(?:[ \t]{{0,3}}(?:[A-Z]{{1,3}})?>[ \t]?){{{depth}}}")


class HeaderRule(Protocol):
    """A way to recognise a quote header starting at a given line."""

    name: str
    description: str

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        """Return the index of the header's last line, or None if there is no header here."""
        ...


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
        kind = kind or _EMAIL.search(phrase) is not None
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
    phrase = text.strip(_FRAME)
    if not phrase or len(phrase) > _MAX_FRAMED_PHRASE:
        return None
    left = text[: len(text) - len(text.lstrip(_FRAME))]
    right = text[len(text.rstrip(_FRAME)) :]
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


class DashedAttribution:
    name = "dashed-attribution"
    description = "'---- John Smith wrote ----': an attribution framed by dashes"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        text = found.texts[0]
        if len(text) > 250 or not (text.startswith("--") and text.endswith("--")):
            return None
        return start if _VERB_DASHED_END.search(text.strip(_FRAME)) else None


class Attribution:
    name = "attribution"
    description = "'On <date>, <name> wrote:' and translations, wrapped over up to four lines"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        first = found.texts[0].lstrip(_FRAME)
        if len(first) > _MAX_ATTRIBUTION or not _strong_start(first):
            return None
        # A first line without date or time is an attribution only when it wraps onto an
        # address: "On Wed, Dec 9, Mister Example\n<mister@example.com>\nwrote:".
        dated = when(first)
        wraps = not dated and bool(_OPENER.match(first))
        if not dated and not wraps:
            return None
        joined = ""
        for count, text in enumerate(found.texts, start=1):
            if count >= 2 and found.indexes[count - 1] != found.indexes[count - 2] + 1:
                # A wrapped attribution has no blank line inside.
                wraps = False
            joined = f"{joined} {text}" if joined else first
            if len(joined) > _MAX_ATTRIBUTION:
                return None
            proven = dated or (wraps and count >= 2 and "@" in joined)
            if proven and closes_attribution(joined.rstrip(_FRAME)):
                return found.indexes[count - 1]
        # Some clients leave the colon off ("... QA <qa@x.org> wrote", Roundcube sl_SI
        # "$date, je $sender napisal"); match_header counts that only above a quote.
        closing = first.rstrip(_FRAME)
        if dated and not closing.endswith((":", "：")) and _VERB_COLON_END.search(f"{closing}:"):
            return start
        return None


def closes_attribution(text: str) -> bool:
    """True when ``text`` ends the way attributions end: a verb or an address, then a colon.

    Thunderbird in German, Dutch and the Nordic languages puts the verb before a bare name
    ("Am 03.03.2025 um 10:15 schrieb QA Mailer:"), which counts too.
    """
    if not text.endswith((":", "：")):
        return False
    tail = text[-120:]
    return bool(
        _VERB_COLON_END.search(tail)
        or ("@" in text and _ADDRESS_COLON_END.search(tail))
        or _VERB_NAME_COLON_END.search(tail)
    )


def _strong_start(text: str) -> bool:
    return bool(
        _OPENER.match(text)
        or _DATE_START.match(text)
        or _WEEKDAY_START.match(text)
        or _TIME_START.match(text)
    )


class NameFirstAttribution:
    name = "name-first-attribution"
    description = (
        "'<name> пишет:', '<name> писал(а) <date>:', '<name>, <date> tarihinde yazdı:':"
        " the sender's name first, no address"
    )

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        text = found.texts[0]
        if len(text) > _MAX_NAME_FIRST or not text.endswith((":", "：")):
            return None
        verb_first = _VERB_START.match(text)
        if verb_first is not None:
            # Thunderbird nb, reply_header_authorwrotesingle "skrev #1:".
            name = text[verb_first.end() :].rstrip(" :：")
            return start if name and not when(name) and _short_name(name) else None
        if not _starts_like_name(lines[start].body):
            # A name is written with a capital; "the commission wrote:" is a sentence.
            return None
        for verb in _VERB_INSIDE.finditer(text):
            before = text[: verb.start()].strip(" ,")
            after = text[verb.end() :].rstrip(" :：")
            # What follows the verb is nothing or the date: "... писал(а) 03.03.2025 10:15:".
            if after and (len(after) > _MAX_NAME_FIRST_DATE or not when(after)):
                continue
            # What comes before it is the name, perhaps with the date after it (Thunderbird
            # tr "#1, #2 #3 tarihinde yazdı:", sl "#1 je #2 ob #3 napisal:"); a name may
            # hold digits ("Industrial Clusters Q&A VC3").
            date = _WHEN.search(before)
            if date is not None and after:
                continue
            name = before[: date.start()].strip(" ,") if date else before
            if name and _short_name(name):
                return start
        return None


def _short_name(text: str) -> bool:
    words = text.split()
    return len(words) <= _MAX_NAME_WORDS and len(text) <= 60 and not _SENTENCE_MARK.search(text)


class QuotingAttribution:
    name = "quoting-attribution"
    description = "Horde IMP's 'Quoting <name> <address>:' and its translations"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        text = found.texts[0]
        # Horde tr "Alinti %f" has no colon; the address closes it instead.
        closed = text.endswith((":", "：")) or (text.endswith(">") and "@" in text)
        if len(text) > _MAX_NAME_FIRST or not closed:
            return None
        opener = _QUOTING.match(text)
        if opener is None:
            return None
        sender = text[opener.end() :].rstrip(" :：)")
        return start if sender and ("@" in sender or _short_name(sender)) else None


class VerblessDatedAttribution:
    name = "verbless-dated-attribution"
    description = "Thunderbird uk '#2 #3, #1:': a date and time, a comma, a name and a colon"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        text = found.texts[0]
        if len(text) > 160 or not _DATE_START.match(text) or not _TIME.search(text):
            return None
        raw = lines[start].body.strip().rstrip(":：").rstrip()
        date, comma, name = raw.rpartition(",")
        name = name.strip()
        if not comma or not when(date) or not _starts_like_name(name) or not _short_name(name):
            return None
        return start


class AddressAttribution:
    name = "address-attribution"
    description = "'Name <address> wrote:' or 'Name <address> schrieb am <date>:'"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        first = found.texts[0]
        if "@" not in first or len(first) > 250:
            return None
        address = _EMAIL.search(first)
        if not address or address.start() > 80:
            return None
        if _VERB_COLON_END.search(first):
            return start
        # German and Dutch Gmail put the date after the verb: "... <a@b> schrieb am Fr., 28.".
        after = first[address.end() :]
        if not re.match(rf"^[>\])\"'\s]*(?:{_VERB})\s", after):
            return None
        joined = first
        for count, text in enumerate(found.texts[1:3], start=2):
            joined = f"{joined} {text}"
            if joined.endswith((":", "：")) and when(joined):
                return found.indexes[count - 1]
        return None


class DatedAddressLine:
    name = "dated-address-line"
    description = "old Gmail '2011/4/7 Name <address>' or '2016-03-03 17:21 GMT+01:00 Name'"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        first = found.texts[0]
        if not _ISO_DATE_START.match(first):
            return None
        joined = first
        for count, text in enumerate(found.texts[:2], start=1):
            if count > 1:
                joined = f"{joined} {text}"
            if len(joined) > 160:
                return None
            if joined.rstrip(":").endswith(">"):
                return found.indexes[count - 1]
        # Without an address, only a time zone and a name may follow the date.
        raw = lines[start].raw[:MAX_LINE].strip()
        zone = _GMT_OFFSET.search(raw)
        return start if zone and looks_like_name(raw[zone.end() :]) else None


_GMT_OFFSET = re.compile(r"\bGMT[+-]\d{1,2}(?::?\d{2})?\b")


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
    if rule == Attribution.name and not text.rstrip(_FRAME).endswith((":", "：")):
        # An attribution without its colon.
        return False
    return "@" in text or bool(_TIME.search(text))


def may_start_header(body: str) -> bool:
    """True when a quote header could start with this line (its body, markers removed).

    What every rule needs of the first line, checked before the window is built: most lines
    of a mail are sentences that no rule could start with.
    """
    head = vocab.fold(body[:MAX_LINE].lstrip(" \t*"))
    if not head.strip(_FRAME):
        # A signature's "--" or a rule of dashes: every rule needs words, a date or an
        # address besides the frame (a divider's are between the dashes).
        return False
    return (
        head.startswith(("-", "=", "_", "~", HEADER_MARK))
        or "@" in head
        or _strong_start(head)
        or bool(_ISO_DATE_START.match(head))
        # field_category(head), without folding the folded head again: every character of
        # a folded text folds to itself.
        or _FIELD.match(head[:MAX_LINE]) is not None
        # NameFirstAttribution: a name with a capital, a colon at the end (the date-first
        # VerblessDatedAttribution starts strong).
        or (
            head.rstrip().endswith(FIELD_COLONS)
            and (_starts_like_name(body) or _VERB_START.match(head) is not None)
        )
    )


def _starts_like_name(body: str) -> bool:
    first = body.lstrip(" \t*")[:1]
    return first.isupper() or first in _NAME_OPENINGS


# A superset of may_start_header for screening a whole body at once (``screens.py``): a line
# it holds for shows, in its folded text after any " \t*", one of HEADER_STARTS or a field
# label (FIELD_START), or "@" anywhere. Keep them in step: each clause there has its part here.
HEADER_STARTS = "|".join(
    (
        rf"[-=_~{HEADER_MARK}]",
        # _DATE_START and _ISO_DATE_START
        r"\d",
        _OPENER.pattern.removeprefix("^"),
        # _WEEKDAY_START: a word of at most 14 characters (12 letters, a dot and a comma) and
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
    if _strong_start(folded.lstrip(_FRAME)):
        return None
    for match in _GLUED_OPENER.finditer(folded):
        suffix = folded[match.start() :]
        if suffix and _OPENER.match(suffix) and when(suffix) and closes_attribution(suffix):
            prefix = head[: match.start()].strip(_FRAME)
            return match.start() if prefix else None
    return None


_GLUED_OPENER = re.compile(rf"(?<=[\s\-])(?:{vocab.alternation(vocab.ATTRIBUTION_OPENERS)})\s")
