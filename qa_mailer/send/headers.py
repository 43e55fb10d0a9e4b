"""Header fields of outgoing mail, folded and encoded by hand (RFC 5322 and RFC 2047).

Every value is cleaned first: control characters (CR and LF above all) become spaces, and runs
of spaces become one, so no value can end its field and start another. Values are then cut
into words at the spaces. ASCII words are written as they are; runs of words that are not
ASCII (or that a reader would mistake for an encoded word) become RFC 2047 encoded words in
UTF-8 and base64: base64 needs no decision about which characters are safe where, and its
C encoder is the fastest. Fields are folded before a space so lines stay within 76 characters,
the limit RFC 2047 sets for lines with encoded words (RFC 5322 asks for 78).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import groupby

# Lines are folded to this width when the words allow it.
_WIDTH = 76
# A word longer than this is encoded (and so can be folded) or refused: together with a
# field name of at most 76 characters it keeps every line under RFC 5322's 998.
_LONGEST_WORD = 900
_EW_PREFIX = "=?utf-8?b?"
_EW_SUFFIX = "?="
# An encoded word is at most 75 characters; base64 of 45 octets is the most that fits.
_EW_MAX_OCTETS = (75 - len(_EW_PREFIX) - len(_EW_SUFFIX)) // 4 * 3
# The least an encoded word holds when a run goes on after it.
_SMALLEST_PIECE = 15
# A UTF-8 sequence is at most four octets.
_LONGEST_CHARACTER = 4

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# RFC 5322 atext: a display name made only of these words needs no quoting.
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
_ATOMS = re.compile(rf"{_ATOM.pattern}(?: {_ATOM.pattern})*")
# An address as RFC 5321 and RFC 6531 allow it in the envelope: a dot-atom or quoted-string
# local part (quoted pairs and UTF-8 allowed), then a domain, which must be ASCII by now.
_ATOM_CHARACTERS = r"[^\s\"(),:;<>@\[\\\]]+"
_QUOTED_LOCAL = r'"(?:[^"\\]|\\.)*"'
# An address literal (RFC 5321 4.1.3): bob@[192.0.2.1], bob@[IPv6:2001:db8::1].
_ADDRESS_LITERAL = r"\[[!-Z^-~]+\]"
_ADDR_SPEC = re.compile(
    rf"(?:{_ATOM_CHARACTERS}|{_QUOTED_LOCAL})@(?:{_ATOM_CHARACTERS}|{_ADDRESS_LITERAL})"
)
_LONGEST_ADDRESS = 254
_QUOTED_PAIR = re.compile(r"\\(.)")
# A message id as it is found in the wild: printable ASCII in angle brackets.
_MSG_ID = re.compile(r"<[!-;=?-~]+>")


def one_line(subject: str) -> str:
    """The subject on one line with single spaces, at most 400 characters (as compose.py)."""
    return " ".join(_clean(subject).split())[:400].rstrip()


def words(value: str) -> list[str]:
    """A header value cleaned of control characters and cut into words at spaces."""
    return [word for word in _clean(value).split(" ") if word]


def _clean(value: str) -> str:
    # isprintable() is false for every control character; most values have none, and the
    # test is far cheaper than a substitution.
    return value if value.isprintable() else _CONTROL.sub(" ", value)


def addr_spec(text: str) -> str:
    """A bare address fit for a header and the SMTP envelope; ValueError if it is not one.

    The local part is a dot-atom or a quoted string (``"p6,x"@firm.example.bg``), in ASCII or
    in UTF-8 (RFC 6531: ``пётр@firm.example.ru``, which only a relay offering SMTPUTF8
    accepts); it is kept as written. A domain in Unicode is written in its ASCII (IDNA)
    form. Nothing is cleaned: an address with a control character (CR or LF above all) is
    refused, never repaired into something else.
    """
    address = text.strip()
    local, at, domain = address.rpartition("@")
    if at and not domain.isascii():
        try:
            address = local + "@" + domain.encode("idna").decode("ascii")
        except UnicodeError as error:
            raise ValueError(f"not an e-mail address: {text!r}") from error
    if (
        not address.isprintable()
        or not address.rpartition("@")[2].isascii()
        or len(address.encode("utf-8")) > _LONGEST_ADDRESS
        or not _ADDR_SPEC.fullmatch(address)
    ):
        raise ValueError(f"not an e-mail address: {text!r}")
    return address


def is_sendable(address: str) -> bool:
    """True when mail can be addressed to ``address`` (addr_spec takes it)."""
    try:
        addr_spec(address)
    except ValueError:
        return False
    return True


def needs_smtputf8(address: str) -> bool:
    """True when ``address`` (as addr_spec gives it) can only travel with SMTPUTF8."""
    return not address.isascii()


def mailbox(entry: str) -> tuple[str, str]:
    """(display name, address) of ``address`` or ``Name <address>``."""
    text = entry.strip()
    if not text.endswith(">") or "<" not in text:
        return "", addr_spec(text)
    name, _, address = text[:-1].rpartition("<")
    name = _clean(name).strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = _QUOTED_PAIR.sub(r"\1", name[1:-1])
    return name, addr_spec(address)


def msg_id(text: str) -> str | None:
    """``text`` as one message id in angle brackets, or None when it is not one."""
    text = text.strip()
    if len(text) <= _LONGEST_WORD and _MSG_ID.fullmatch(text):
        return text
    return None


def msg_id_field(name: str, values: Iterable[str]) -> str | None:
    """In-Reply-To or References: the well-formed ids among ``values``, None if there are none.

    The ids come from mail we received and may be anything; one that is not ASCII or not in
    angle brackets cannot be written in this field and would not thread anything anyway.
    """
    ids = [found for value in values for word in _clean(value).split() if (found := msg_id(word))]
    return _words_field(name, ids) if ids else None


def unstructured_field(name: str, value: str) -> str:
    """A field of free text (Subject, X-...), folded, with encoded words where needed."""
    if _is_plain(value):
        # Most values (Q-17, auto-replied, an English subject) need no more than this.
        if len(name) + 2 + len(value) <= _WIDTH:
            return f"{name}: {value}"
        return _words_field(name, value.split(" "))
    field = _Field(name)
    _add_phrase(field, words(value), _needs_encoding_in_text)
    return field.text()


def address_field(name: str, boxes: Sequence[tuple[str, str]]) -> str:
    """From, To, Cc or Reply-To: comma-separated mailboxes with RFC 5322 display names."""
    simple = _simple_mailbox(*boxes[0]) if len(boxes) == 1 else None
    if simple and len(name) + 2 + len(simple) <= _WIDTH:
        return f"{name}: {simple}"
    field = _Field(name, structured=True)
    last = len(boxes) - 1
    for number, (display_name, address) in enumerate(boxes):
        comma = "," if number < last else ""
        # Any run of white space in a name, Unicode spaces too, is one space: Python's email
        # reads a no-break space after a space in an encoded word as folding white space.
        name_words = _clean(display_name).split()
        if name_words:
            _add_display_name(field, name_words)
            field.add_words([f"<{address}>{comma}"])
        else:
            field.add_words([address + comma])
    return field.text()


def _simple_mailbox(display_name: str, address: str) -> str | None:
    # The usual From and To: a bare address, or a name of plain words (Q&A Service VC3).
    if not display_name:
        return address
    if "=?" not in display_name and _ATOMS.fullmatch(display_name):
        return f"{display_name} <{address}>"
    return None


def _is_plain(value: str) -> bool:
    # Printable ASCII with single spaces and nothing a reader would take for an encoded word
    # is only folded, never encoded.
    return (
        value.isascii()
        and value.isprintable()
        and "=?" not in value
        and "  " not in value
        and value[:1] != " "
        and value[-1:] != " "
        and (
            len(value) <= _LONGEST_WORD
            or all(len(word) <= _LONGEST_WORD for word in value.split(" "))
        )
    )


def _words_field(name: str, value_words: list[str]) -> str:
    # A field that fits on one line (most do) skips the folding machinery.
    if len(name) + 1 + sum(len(word) + 1 for word in value_words) <= _WIDTH:
        return f"{name}: {' '.join(value_words)}"
    field = _Field(name)
    field.add_words(value_words)
    return field.text()


def _add_display_name(field: _Field, name_words: list[str]) -> None:
    name = " ".join(name_words)
    if "=?" not in name and all(_ATOM.fullmatch(word) for word in name_words):
        field.add_words(name_words)
        return
    # An encoded word inside quotes is not one (RFC 2047 5), so a name with "=?" or
    # one that is not ASCII is written as atoms and encoded words instead.
    if name.isascii() and "=?" not in name and max(map(len, name_words)) < _LONGEST_WORD:
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        # Folding white space may stand between the words of a quoted string too.
        field.add_words(quoted.split(" "))
        return
    _add_phrase(field, name_words, _needs_encoding_in_phrase)


def _needs_encoding_in_text(word: str) -> bool:
    # "=?" anywhere in a word would make a reader look for an encoded word there.
    return not word.isascii() or "=?" in word or len(word) > _LONGEST_WORD


def _needs_encoding_in_phrase(word: str) -> bool:
    return _needs_encoding_in_text(word) or not _ATOM.fullmatch(word)


def _add_phrase(
    field: _Field, value_words: list[str], needs_encoding: Callable[[str], bool]
) -> None:
    # Neighbouring words that need encoding go into one run, spaces and all: a reader drops
    # the white space between two encoded words, so a space must be inside the encoding.
    for encode, group in groupby(value_words, needs_encoding):
        if encode:
            field.add_encoded(" ".join(group))
        else:
            field.add_words(group)


class _Field:
    """One header field, built word by word and folded before a space when a line is full."""

    __slots__ = ("_done", "_fold_after_name", "_line", "_words_on_line")

    def __init__(self, name: str, *, structured: bool = False) -> None:
        self._done: list[str] = []
        self._line = name + ":"
        self._words_on_line = 0
        # A line is folded only after a word, so no line holds only white space (RFC 5322
        # 3.2.2). The one exception is right after the name of an address field, where the
        # white space is CFWS and means nothing; in free text Python's email would keep it
        # as a leading space of the value.
        self._fold_after_name = structured

    def text(self) -> str:
        """The field as it goes into the head of the mail, lines joined by CRLF."""
        return "\r\n".join([*self._done, self._line])

    def add_words(self, value_words: Iterable[str]) -> None:
        """Add words that must each stay whole; a word too long for any line gets its own."""
        line, count = self._line, self._words_on_line
        for word in value_words:
            if count and len(line) + 1 + len(word) > _WIDTH:
                self._done.append(line)
                line, count = "", 0
            line += " " + word
            count += 1
        self._line, self._words_on_line = line, count

    def add_encoded(self, text: str) -> None:
        """Add ``text`` as encoded words, cut between characters, preferably after a space."""
        data = text.encode("utf-8", "replace")
        if len(data) <= _EW_MAX_OCTETS:
            # Most runs (a word or two) make one encoded word, on this line or the next.
            word = _encoded_word(data)
            fits = len(self._line) + 1 + len(word) <= _WIDTH
            if fits or self._can_fold():
                if not fits:
                    self._fold()
                self.add_words([word])
                return
        start = 0
        while start < len(data):
            left = len(data) - start
            most = min(_octets_fitting(self._room()), _EW_MAX_OCTETS)
            if self._can_fold() and most < _least_piece(left):
                self._fold()
                continue
            # A long field name can leave no room on the first line: take one character.
            end = _cut(data, start, max(most, _LONGEST_CHARACTER))
            self.add_words([_encoded_word(data[start:end])])
            start = end

    def _room(self) -> int:
        return _WIDTH - len(self._line) - 1

    def _can_fold(self) -> bool:
        return self._words_on_line > 0 or (self._fold_after_name and not self._done)

    def _fold(self) -> None:
        self._done.append(self._line)
        self._line = ""
        self._words_on_line = 0


def _least_piece(left: int) -> int:
    """The fewest octets worth starting an encoded word with, when ``left`` remain to encode.

    What is left of a run goes whole onto the next line when it fits one encoded word there:
    some readers, Python's email among them, keep the white space between two encoded words
    of a display name. A longer run starts no sliver of a word at the end of a line.
    """
    return left if left <= _EW_MAX_OCTETS else _SMALLEST_PIECE


def _octets_fitting(room: int) -> int:
    return max(0, (room - len(_EW_PREFIX) - len(_EW_SUFFIX)) // 4 * 3)


def _cut(data: bytes, start: int, most: int) -> int:
    """Where to end an encoded word that starts at ``start`` and holds at most ``most`` octets.

    Never inside a UTF-8 sequence (RFC 2047 6.3 asks each word to decode on its own); after a
    space if there is one, so a split falls between words of the text.
    """
    end = start + most
    if end >= len(data):
        return len(data)
    # A continuation octet (10xxxxxx) never starts a character.
    while end > start and data[end] & 0xC0 == 0x80:
        end -= 1
    space = data.rfind(b" ", start, end)
    return space + 1 if space > start else end


def _encoded_word(data: bytes) -> str:
    return _EW_PREFIX + binascii.b2a_base64(data, newline=False).decode("ascii") + _EW_SUFFIX
