"""Bytes of a doubtful charset to text: labels that lie, labels missing, bytes damaged."""

from __future__ import annotations

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
    if cyrillic / len(high) > 0.7 and len(high) > ascii_letters:
        # Lower-case letters dominate running text: they sit at 0xE0-0xFF in windows-1251 and
        # at 0xC0-0xDF in KOI8-R.
        upper_half = sum(1 for b in high if b >= 0xE0)
        return "cp1251" if upper_half * 2 >= cyrillic else "koi8_r"
    return "cp1252"
