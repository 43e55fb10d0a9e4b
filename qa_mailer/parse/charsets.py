"""Bytes of a doubtful charset to text: labels that lie, labels missing, bytes damaged."""

from __future__ import annotations

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
    """Decode with the declared charset (or its superset); guess when the label is unknown."""
    try:
        text = payload.decode(_SUPERSETS.get(charset.lower().strip(), charset), "replace")
    except (LookupError, ValueError):
        # An unknown label, or one that is not a name at all (a NUL in it).
        return decode_guessing(payload)
    # A replacement character means the label lied; the bytes may still be readable.
    return decode_guessing(payload) if "\ufffd" in text else text


def decode_guessing(payload: bytes) -> str:
    """Decode bytes of unknown charset: UTF-8, else windows-1251 or KOI8-R, else windows-1252."""
    if payload.isascii():
        # No high byte, so no guess to make: what the UTF-8 branch below returns.
        return payload.decode("ascii")
    return payload.decode(guess_charset(payload), "replace")


def guess_charset(payload: bytes) -> str:
    """The charset decode_guessing reads ``payload`` with."""
    as_utf8 = payload.decode("utf-8", "replace")
    high = [b for b in payload if b >= 0x80]
    if not high:
        return "ascii"
    # A few broken sequences in otherwise valid UTF-8 are damage, not another charset.
    if as_utf8.count("\ufffd") * 50 <= len(high):
        return "utf-8"
    cyrillic = sum(1 for b in high if b >= 0xC0)
    # Cyrillic text is written almost wholly in high bytes; Latin text with a few accented
    # letters ("Şunu yazdı") is mostly ASCII letters.
    ascii_letters = sum(1 for b in payload if 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A)
    if cyrillic / len(high) > 0.7 and len(high) > ascii_letters and not _latin_words(payload):
        # Lower-case letters dominate running text: they sit at 0xE0-0xFF in windows-1251 and
        # at 0xC0-0xDF in KOI8-R.
        upper_half = sum(1 for b in high if b >= 0xE0)
        return "cp1251" if upper_half * 2 >= cyrillic else "koi8_r"
    return _latin_code_page(payload)


_WORD = re.compile(rb"[A-Za-z\x80-\xff]+")
_ASCII_LETTER = re.compile(rb"[A-Za-z]")


def _latin_words(payload: bytes) -> bool:
    """Whether most words with high bytes also hold ASCII letters, as Latin words do ("été").

    A Cyrillic word is written in high bytes alone; a short French or Turkish text can
    otherwise pass for Cyrillic by its share of high bytes.
    """
    words = [word for word in _WORD.findall(payload) if max(word) >= 0x80]
    mixed = sum(1 for word in words if _ASCII_LETTER.search(word))
    return mixed * 2 > len(words)


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
    ("iso-8859-2", ("hr", "sl", "cs", "sk", "pl", "hu", "ro", "de")),
    ("cp1254", ("tr", "de", "fr")),
)


def _latin_code_page(payload: bytes) -> str:
    """The Latin code page whose reading of the high bytes best fits one language.

    Each code page reads the bytes; each of its languages scores a point (two for the
    programme's) for every character that is one of its letters and loses one for every other (a symbol, a control character,
    another language's letter). "Kuæe ... Takoðer" (windows-1250 read as windows-1252) scores
    badly in every Western language; "kuće ... Također" scores fully in Croatian.
    """
    high = bytes(b for b in payload if b >= 0x80)
    best, best_score = "cp1252", None
    for charset, languages in _LATIN_CODE_PAGES:
        text = high.decode(charset, "replace")
        score = max(
            sum(_WEIGHT.get(lang, 1) if ch in _LETTERS[lang] else -1 for ch in text)
            for lang in languages
        )
        if best_score is None or score > best_score:
            best, best_score = charset, score
    return best
