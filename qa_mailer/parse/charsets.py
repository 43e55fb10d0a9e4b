"""Bytes of a doubtful charset to text: labels that lie, labels missing, bytes damaged."""

from __future__ import annotations

import codecs
import functools
import re

# Senders label mail with the narrower charset and write characters from its superset.
_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ks_c_5601-1987": "cp949",
    "iso-8859-9": "cp1254",
}


def decode_with(payload: bytes, charset: str) -> str:
    """Decode with the declared charset (or its superset); guess when the label is unknown.

    A label is doubted as far as the bytes allow: one that leaves undecodable bytes is
    dropped for a guess, and a single-byte label (windows-1252, ISO-8859-2, KOI8-R, ...) is
    dropped when the bytes are valid UTF-8 or read better in another code page (a
    windows-1250 body labelled ISO-8859-1, KOI8-R labelled windows-1251).
    """
    try:
        codec = codecs.lookup(_SUPERSETS.get(charset.lower().strip(), charset)).name
    except (LookupError, ValueError, TypeError):
        # An unknown label, or one that is not a name at all (a NUL in it).
        return decode_guessing(payload)
    text = payload.decode(codec, "replace")
    # A replacement character means the label lied; the bytes may still be readable.
    if "\ufffd" in text:
        return decode_guessing(payload)
    if codec in _SINGLE_BYTE and not payload.isascii():
        guessed = guess_charset(payload)
        if guessed != codec and _reads_better(payload, guessed, codec):
            return payload.decode(guessed, "replace")
    return text


def is_single_byte(charset: str) -> bool:
    """Whether ``charset`` names one of the single-byte code pages decode_with doubts."""
    try:
        return codecs.lookup(_SUPERSETS.get(charset.lower().strip(), charset)).name in _SINGLE_BYTE
    except (LookupError, ValueError, TypeError):
        return False


def decode_guessing(payload: bytes) -> str:
    """Decode bytes of unknown charset: UTF-8, else windows-1251 or KOI8-R, else windows-1252."""
    if payload.isascii():
        # No high byte, so no guess to make: what the UTF-8 branch below returns.
        return payload.decode("ascii")
    return payload.decode(guess_charset(payload), "replace")


def guess_charset(payload: bytes) -> str:
    """The charset decode_guessing reads ``payload`` with (a Python codec name)."""
    high = payload.translate(None, _ASCII)
    if not high:
        return "ascii"
    # Bytes from 0xC0 up: a code page's Cyrillic letters, or what starts a UTF-8 sequence.
    leads = len(high.translate(None, _BELOW_C0))
    if _utf8(payload, high, leads):
        return "utf-8"
    # Cyrillic text is written almost wholly in high bytes; Latin text with a few accented
    # letters ("Şunu yazdı") is mostly ASCII letters.
    ascii_letters = len(payload) - len(payload.translate(None, _ASCII_LETTERS))
    if leads / len(high) > 0.7 and len(high) > ascii_letters and not _latin_words(payload):
        return _cyrillic_code_page(high)
    return _latin_code_page(high)


def _utf8(payload: bytes, high: bytes, leads: int) -> bool:
    """Whether ``payload`` is UTF-8, perhaps damaged: ``high`` are its bytes beyond ASCII,
    ``leads`` how many of them are 0xC0 or more.

    A few broken sequences in otherwise valid UTF-8 are damage, not another charset; bytes
    with no UTF-8 sequence in them at all (a code page's text) are not UTF-8. The checks go
    from the cheapest: a strict decode stops at a code page's first high byte, and valid
    UTF-8 with a high byte always holds a sequence.
    """
    try:
        payload.decode("utf-8")
        return True
    except UnicodeDecodeError:
        pass
    # Each sequence takes one lead byte and at least one byte below 0xC0; a lead byte left
    # over is one replacement character at least, so Cyrillic in a code page (nearly all
    # lead bytes) is known to be no UTF-8 without decoding it.
    if (leads - (len(high) - leads)) * 50 > len(high):
        return False
    damaged = payload.decode("utf-8", "replace").count("\ufffd")
    return damaged * 50 <= len(high) and _UTF8_PAIR.search(payload) is not None


_ASCII = bytes(range(0x80))
_UTF8_PAIR = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_BELOW_C0 = bytes(range(0xC0))
_ASCII_LETTERS = bytes(range(0x41, 0x5B)) + bytes(range(0x61, 0x7B))
_CLASSES = bytes(
    ord("H") if b >= 0x80 else ord("L") if chr(b).isascii() and chr(b).isalpha() else ord(" ")
    for b in range(256)
)


def _latin_words(payload: bytes) -> bool:
    """Whether most words with high bytes also hold ASCII letters, as Latin words do ("été").

    A Cyrillic word is written in high bytes alone; a short French or Turkish text can
    otherwise pass for Cyrillic by its share of high bytes.
    """
    # Each byte as its class (H high, L ASCII letter, blank otherwise), counted at C speed.
    classes = payload.translate(_CLASSES)
    latin_to_high = classes.count(b"LH")
    seams = latin_to_high + classes.count(b"HL")
    runs = classes.count(b" H") + latin_to_high + classes.startswith(b"H")
    return seams * 2 > runs


# The letters beyond ASCII of the languages written in each Latin code page (the programme's
# Croatian, Serbian, Bosnian and Turkish, and their neighbours), capitals added below.
_LETTERS = {
    "hr": "čćžšđ",  # also Bosnian and Serbian in Latin script
    "sl": "čžš",
    "cs": "áčďéěíňóřšťúůýž",
    "sk": "áäčďéíĺľňóôŕšťúýž",
    "pl": "ąćęłńóśźż",
    "hu": "áéíóöőúüű",
    "ro": "ăâîșțşţ",
    "tr": "çğıöşüâîûİ",
    "de": "äöüß",
    "fr": "àâçéèêëîïôœùûüÿ",
    "es": "áéíñóúü",
    "it": "àèéìòù",
    "pt": "áâãàçéêíóôõú",
    "nl": "ëïé",
}
_LETTERS = {language: letters + letters.upper() for language, letters in _LETTERS.items()}
# A name of two letters beyond ASCII ("Ayşe Yılmaz", "Perić") is all a header may give: the
# programme's own languages win a tie against their neighbours'.
_WEIGHT = {"hr": 2, "tr": 2}
# The Latin code pages a mail of unknown charset may be in, in the order a tie is settled,
# with the languages each is written for.
_LATIN_CODE_PAGES = (
    ("cp1252", ("de", "fr", "es", "it", "pt", "nl")),
    ("cp1250", ("hr", "sl", "cs", "sk", "pl", "hu", "ro", "de")),
    ("iso8859-2", ("hr", "sl", "cs", "sk", "pl", "hu", "ro", "de")),
    ("cp1254", ("tr", "de", "fr")),
)
_LANGUAGES = dict(_LATIN_CODE_PAGES) | {"iso8859-1": ("de", "fr", "es", "it", "pt", "nl")}


# The most frequent letters of Russian, Bulgarian and Serbian running text: a code page that
# reads the bytes right turns most of them into these, a wrong one into rarer letters.
_FREQUENT_CYRILLIC = frozenset("оеаинтсрвлкдмпуяОЕАИНТСРВЛКДМПУ")
_CYRILLIC_CODE_PAGES = ("cp1251", "koi8-r", "iso8859-5")
_CYRILLIC = frozenset(_CYRILLIC_CODE_PAGES)
# Labels that name a single-byte code page of the programme's countries or their neighbours:
# the ones a sender's client gets wrong.
_SINGLE_BYTE = frozenset(_LANGUAGES) | _CYRILLIC


def _cyrillic_code_page(high: bytes) -> str:
    """windows-1251, KOI8-R or ISO-8859-5: the one whose reading of the high bytes holds the
    most common letters."""
    scores = [_cyrillic_fit(high, charset) for charset in _CYRILLIC_CODE_PAGES]
    return _CYRILLIC_CODE_PAGES[scores.index(max(scores))]


def _cyrillic_fit(high: bytes, charset: str) -> int:
    """How many of the high bytes ``charset`` reads as common Cyrillic letters."""
    return len(high) - len(high.translate(None, _letter_bytes(charset, _FREQUENT_CYRILLIC)))


def _latin_code_page(high: bytes) -> str:
    """The Latin code page whose reading of the high bytes best fits one language.

    Each code page reads the bytes; each of its languages scores a point (two for the
    programme's) for every character that is one of its letters and loses one for every
    other (a symbol, a control character, another language's letter). "Kuæe ... Takoðer"
    (windows-1250 read as windows-1252) scores badly in every Western language; "kuće ...
    Također" scores fully in Croatian.
    """
    scores = [_latin_fit(high, charset) for charset, _ in _LATIN_CODE_PAGES]
    return _LATIN_CODE_PAGES[scores.index(max(scores))][0]


def _latin_fit(high: bytes, charset: str) -> int:
    scores = []
    for language in _LANGUAGES[charset]:
        letters = len(high) - len(high.translate(None, _letter_bytes(charset, _LETTERS[language])))
        scores.append(letters * _WEIGHT.get(language, 1) - (len(high) - letters))
    return max(scores)


@functools.cache
def _letter_bytes(charset: str, letters: str | frozenset[str]) -> bytes:
    """The high bytes that ``charset`` reads as one of ``letters``: counted without decoding."""
    return bytes(b for b in range(0x80, 0x100) if bytes([b]).decode(charset, "replace") in letters)


def _reads_better(payload: bytes, guessed: str, declared: str) -> bool:
    """Whether the guessed charset reads ``payload`` better than the declared one."""
    if guessed == "utf-8":
        # Valid UTF-8 is never an accident.
        return True
    high = payload.translate(None, _ASCII)
    if guessed in _CYRILLIC:
        return declared not in _CYRILLIC or (
            _cyrillic_fit(high, guessed) > _cyrillic_fit(high, declared)
        )
    if declared in _CYRILLIC:
        # A few Cyrillic letters in much Latin text (markup, a signature) do not make the
        # guesser see Cyrillic: the label stands unless its reading holds few common letters.
        return _cyrillic_fit(high, declared) * 4 < len(high)
    if declared not in _LANGUAGES:
        return False
    return _latin_fit(high, guessed) > _latin_fit(high, declared)
