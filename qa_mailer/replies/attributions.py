"""Attribution rules: the line a client writes to name the sender above a quote.

"On <date>, <name> wrote:" in its many languages and wrappings, "<name> пишет:" with the
name first, Horde's "Quoting <name>:", old Gmail's dated address line. Each is a small named
class; ``headers.HEADER_RULES`` gives their order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa_mailer.replies.attribution_text import (
    DATE_START,
    EMAIL,
    FRAME,
    GMT_OFFSET,
    ISO_DATE_START,
    MAX_ATTRIBUTION,
    OPENER,
    QUOTING,
    TIME,
    VERB,
    VERB_COLON_END,
    VERB_DASHED_END,
    VERB_INSIDE,
    VERB_START,
    WHEN,
    closes_attribution,
    looks_like_name,
    short_name,
    starts_like_name,
    strong_start,
    when,
)
from qa_mailer.replies.lines import MAX_LINE, Line
from qa_mailer.replies.window import (
    Window,
)

# An attribution that starts with the sender's name: the line, the date after the verb, and
# the words of the name.
_MAX_NAME_FIRST = 160
_MAX_NAME_FIRST_DATE = 60


class DashedAttribution:
    name = "dashed-attribution"
    description = "'---- John Smith wrote ----': an attribution framed by dashes"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        text = found.texts[0]
        if len(text) > 250 or not (text.startswith("--") and text.endswith("--")):
            return None
        return start if VERB_DASHED_END.search(text.strip(FRAME)) else None


class Attribution:
    name = "attribution"
    description = "'On <date>, <name> wrote:' and translations, wrapped over up to four lines"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        first = found.texts[0].lstrip(FRAME)
        if len(first) > MAX_ATTRIBUTION or not strong_start(first):
            return None
        # A first line without date or time is an attribution only when it wraps onto an
        # address: "On Wed, Dec 9, Mister Example\n<mister@example.com>\nwrote:".
        dated = when(first)
        wraps = not dated and bool(OPENER.match(first))
        if not dated and not wraps:
            return None
        joined = ""
        for count, text in enumerate(found.texts, start=1):
            if count >= 2 and found.indexes[count - 1] != found.indexes[count - 2] + 1:
                # A wrapped attribution has no blank line inside.
                wraps = False
            joined = f"{joined} {text}" if joined else first
            if len(joined) > MAX_ATTRIBUTION:
                return None
            proven = dated or (wraps and count >= 2 and "@" in joined)
            if proven and closes_attribution(joined.rstrip(FRAME)):
                return found.indexes[count - 1]
        # Some clients leave the colon off ("... QA <qa@x.org> wrote", Roundcube sl_SI
        # "$date, je $sender napisal"); match_header counts that only above a quote.
        closing = first.rstrip(FRAME)
        if dated and not closing.endswith((":", "：")) and VERB_COLON_END.search(f"{closing}:"):
            return start
        return None


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
        verb_first = VERB_START.match(text)
        if verb_first is not None:
            # Thunderbird nb, reply_header_authorwrotesingle "skrev #1:".
            name = text[verb_first.end() :].rstrip(" :：")
            return start if name and not when(name) and short_name(name) else None
        if not starts_like_name(lines[start].body):
            # A name is written with a capital; "the commission wrote:" is a sentence.
            return None
        for verb in VERB_INSIDE.finditer(text):
            before = text[: verb.start()].strip(" ,")
            after = text[verb.end() :].rstrip(" :：")
            # What follows the verb is nothing or the date: "... писал(а) 03.03.2025 10:15:".
            if after and (len(after) > _MAX_NAME_FIRST_DATE or not when(after)):
                continue
            # What comes before it is the name, perhaps with the date after it (Thunderbird
            # tr "#1, #2 #3 tarihinde yazdı:", sl "#1 je #2 ob #3 napisal:"); a name may
            # hold digits ("Industrial Clusters Q&A VC3").
            date = WHEN.search(before)
            if date is not None and after:
                continue
            name = before[: date.start()].strip(" ,") if date else before
            if name and short_name(name):
                return start
        return None


class QuotingAttribution:
    name = "quoting-attribution"
    description = "Horde IMP's 'Quoting <name> <address>:' and its translations"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        text = found.texts[0]
        # Horde tr "Alinti %f" has no colon; the address closes it instead.
        closed = text.endswith((":", "：")) or (text.endswith(">") and "@" in text)
        if len(text) > _MAX_NAME_FIRST or not closed:
            return None
        opener = QUOTING.match(text)
        if opener is None:
            return None
        sender = text[opener.end() :].rstrip(" :：)")
        return start if sender and ("@" in sender or short_name(sender)) else None


class VerblessDatedAttribution:
    name = "verbless-dated-attribution"
    description = "Thunderbird uk '#2 #3, #1:': a date and time, a comma, a name and a colon"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        text = found.texts[0]
        if len(text) > 160 or not DATE_START.match(text) or not TIME.search(text):
            return None
        raw = lines[start].body.strip().rstrip(":：").rstrip()
        date, comma, name = raw.rpartition(",")
        name = name.strip()
        if not comma or not when(date) or not starts_like_name(name) or not short_name(name):
            return None
        return start


class AddressAttribution:
    name = "address-attribution"
    description = "'Name <address> wrote:' or 'Name <address> schrieb am <date>:'"

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        first = found.texts[0]
        if "@" not in first or len(first) > 250:
            return None
        address = EMAIL.search(first)
        if not address or address.start() > 80:
            return None
        if VERB_COLON_END.search(first):
            return start
        # German and Dutch Gmail put the date after the verb: "... <a@b> schrieb am Fr., 28.".
        after = first[address.end() :]
        if not re.match(rf"^[>\])\"'\s]*(?:{VERB})\s", after):
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
        if not ISO_DATE_START.match(first):
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
        zone = GMT_OFFSET.search(raw)
        return start if zone and looks_like_name(raw[zone.end() :]) else None
