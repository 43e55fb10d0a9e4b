"""E-mail addresses as the service sees them: normalised, split, and plus-tagged."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import getaddresses

# Deliberately loose: the point is to reject obvious typos in configuration and rosters, not
# to validate RFC 5322 in full.
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[^@\s<>(),;:\"]+$")


def normalise(address: str) -> str:
    """Lower-case an address and strip angle brackets and white space around it."""
    return address.strip().strip("<>").strip().lower()


def is_address(text: str) -> bool:
    """True when ``text`` looks like a single e-mail address."""
    return bool(_ADDRESS.match(text.strip()))


def domain_of(address: str) -> str:
    """The part after the last ``@``, lower-cased ("" when there is none)."""
    _, at, domain = normalise(address).rpartition("@")
    return domain if at else ""


# A list of addresses that getaddresses reads back as written: "a@b.example.org" or
# "Some Name <a@b.example.org>" items, commas between. Its address is dot-atoms of plain
# characters; its name is words with no character the parser treats specially (quotes,
# comments, brackets, separators, dots). Anything else goes to getaddresses.
_PLAIN_ADDRESS = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_WORD = r'[^\s()<>@,;:\\".\[\]]+'
_PLAIN_ITEM = (
    rf"(?:(?:{_PLAIN_WORD}(?:[ \t]+{_PLAIN_WORD})*[ \t]*)?<{_PLAIN_ADDRESS}>|{_PLAIN_ADDRESS})"
)
_PLAIN_LIST = re.compile(rf"[ \t]*{_PLAIN_ITEM}(?:[ \t]*,[ \t]*{_PLAIN_ITEM})*[ \t]*")


def addresses_in(*header_values: str | None) -> list[str]:
    """Every address in the given header values (To, Cc, ...), normalised, in order."""
    values = [value for value in header_values if value]
    if not values:
        # Most mail has no Cc, Reply-To or Delivered-To; getaddresses([]) is [] the slow way.
        return []
    return [normalise(address) for _, address in names_and_addresses(values) if "@" in address]


def names_and_addresses(values: list[str]) -> list[tuple[str, str]]:
    """``getaddresses(values)``: the (name, address) of each item, the name still encoded.

    getaddresses reads the values joined by commas, one character at a time in Python: 15 µs
    for one address, where a plain list (see _PLAIN_LIST) is split in 2.
    """
    joined = ", ".join(values)
    if not _PLAIN_LIST.fullmatch(joined):
        return getaddresses(values)
    pairs = []
    for item in joined.split(","):
        name, bracket, address = item.rpartition("<")
        # The name's words, one space between them, as getaddresses joins them.
        pairs.append(
            (" ".join(name.split()), address.rstrip(" \t>")) if bracket else ("", item.strip(" \t"))
        )
    return pairs


@dataclass(frozen=True)
class ServiceAddress:
    """The Q&A address and the plus-tagged variants derived from it (``qa+vc3@...``)."""

    local: str
    domain: str

    @classmethod
    def parse(cls, address: str) -> ServiceAddress:
        local, _, domain = normalise(address).rpartition("@")
        return cls(local=local, domain=domain)

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"

    def tagged(self, tag: str) -> str:
        """The address with a plus tag: ``qa+tag@domain``."""
        return f"{self.local}+{tag}@{self.domain}"

    def tag_of(self, address: str) -> str | None:
        """The plus tag of ``address`` when it is a variant of this address, else None."""
        local, _, domain = normalise(address).rpartition("@")
        if domain != self.domain:
            return None
        base, plus, tag = local.partition("+")
        if base != self.local or not plus:
            return None
        return tag

    def is_ours(self, address: str) -> bool:
        """True for the address itself and any plus-tagged variant of it."""
        address = normalise(address)
        return address == self.address or self.tag_of(address) is not None
