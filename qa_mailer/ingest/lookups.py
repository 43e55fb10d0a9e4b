"""DNS look-ups for mail authentication, through the resolver the configuration names.

dkimpy takes its TXT look-up as an argument; pyspf looks DNS up through a module-level
function. Both are pointed here, at one dnspython resolver per listener, so the servers and
the timeout come from ``[authentication]`` (a test points them at its own DNS server) and a
timeout is told apart from an empty answer: it must give "temperror", never "none".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
import spf

from qa_mailer.config import AuthenticationConfig


class DnsTimeout(Exception):
    """A DNS server did not answer (or every server failed) within the timeout."""


def make_resolver(config: AuthenticationConfig) -> dns.resolver.Resolver:
    """A resolver asking ``config.dns_servers`` (the system's when empty), with its timeout."""
    if config.dns_servers:
        resolver = dns.resolver.Resolver(configure=False)
        # A nameserver object per server, so each may have its own port.
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(host, port) for host, port in config.dns_servers
        ]
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = config.dns_timeout_seconds
    resolver.timeout = config.dns_timeout_seconds
    return resolver


class Lookups:
    """The look-ups for one mail's verification; remembers whether any of them timed out."""

    def __init__(self, resolver: dns.resolver.Resolver):
        self._resolver = resolver
        self.timed_out = False

    def answers(self, name: str, qtype: str) -> list[Any]:
        """The records of ``qtype`` at ``name``; [] when there are none; DnsTimeout when unsure."""
        try:
            answer = self._resolver.resolve(name, qtype, raise_on_no_answer=False, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:
            self.timed_out = True
            raise DnsTimeout(f"{qtype} {name}: {error}") from error
        return list(answer.rrset or [])

    def dkim_txt(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``: the key record at ``name``, or None."""
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            records = self.answers(text, "TXT")
        except DnsTimeout:
            # dkimpy turns any exception into a failed signature; the timeout is remembered
            # here so the verdict can say "temperror" instead.
            return None
        return b"".join(records[0].strings) if records else None

    def txt(self, name: str) -> list[str]:
        """Every TXT record at ``name``, each joined from its strings."""
        return [
            b"".join(record.strings).decode("utf-8", "replace")
            for record in self.answers(name, "TXT")
        ]


_current: ContextVar[Lookups | None] = ContextVar("qa_mailer_dns_lookups", default=None)


@contextmanager
def spf_lookups(lookups: Lookups) -> Iterator[None]:
    """Route pyspf's look-ups in this context (and threads started from it) to ``lookups``."""
    token = _current.set(lookups)
    try:
        yield
    finally:
        _current.reset(token)


def _spf_lookup(name: str, qtype: str, strict: bool = True, timeout: float = 20) -> list[Any]:
    # The shape pyspf expects back: ((name, qtype), value) pairs, as its own dnspython
    # look-up returns them.
    lookups = _current.get()
    if lookups is None:
        raise spf.TempError("DNS look-up outside an authentication check")
    try:
        records = lookups.answers(name, qtype)
    except DnsTimeout as error:
        raise spf.TempError(f"DNS {error}") from error
    found: list[Any] = []
    for record in records:
        if qtype in {"A", "AAAA"}:
            found.append(((name, qtype), record.address))
        elif qtype == "MX":
            found.append(((name, qtype), (record.preference, record.exchange)))
        elif qtype == "PTR":
            found.append(((name, qtype), record.target.to_text(True)))
        elif qtype in {"TXT", "SPF"}:
            found.append(((name, qtype), record.strings))
    return found


# pyspf calls the module-level DNSLookup for every query; this one reads the resolver from
# the context, so two listeners with different servers never share one.
spf.DNSLookup = _spf_lookup
