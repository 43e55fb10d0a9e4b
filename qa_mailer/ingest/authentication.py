"""SPF, DKIM and DMARC of mail that reaches our own listener, checked by us.

A mail that comes straight to our listener has passed no provider that could vouch for it, so
an ``Authentication-Results`` header in it was written by whoever sent it. The listener
renames every such header that claims a trusted authserv-id (ours or one of
``expert_check.trusted_authserv_ids``) to ``X-Original-Authentication-Results``, verifies
the mail itself (pyspf for SPF with the SMTP session's client address, MAIL FROM and HELO;
dkimpy for DKIM; DMARC from the two and the From domain's policy record) and writes its own
``Authentication-Results`` at the top, before the raw mail is stored.

Renaming, rather than deleting, keeps what the sender claimed in the stored mail for an
organiser to read; under its new name no check believes it (RFC 8601, section 5, asks a
receiver to remove or rename such headers).
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from functools import lru_cache

import dkim
import spf
from authheaders.dmarc_lookup import get_org_domain

from qa_mailer.config import AuthenticationConfig
from qa_mailer.ingest.lookups import DnsTimeout, Lookups, make_resolver, spf_lookups

log = logging.getLogger("qa_mailer.ingest")

RENAMED = b"X-Original-Authentication-Results"
_HEADER_END = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class SmtpConversation:
    """What the SMTP conversation told us about the sender."""

    client_ip: str | None
    helo: str | None
    mail_from: str | None


@dataclass(frozen=True)
class Verdict:
    """One method's result ("pass", "fail", "temperror", ...) and its properties."""

    method: str
    result: str
    properties: tuple[tuple[str, str], ...] = ()
    comment: str = ""

    def __str__(self) -> str:
        text = f"{self.method}={self.result}"
        if self.comment:
            text += f" ({self.comment})"
        return " ".join([text, *(f"{key}={value}" for key, value in self.properties)])


class MailAuthenticator:
    """Renames forged claims and stamps our own Authentication-Results on a raw mail."""

    def __init__(self, config: AuthenticationConfig, trusted_ids: tuple[str, ...]):
        self._config = config
        self._claimed = {config.authserv_id.lower(), *(i.lower() for i in trusted_ids)}
        self._resolver = make_resolver(config) if config.verify else None

    async def stamp(self, raw: bytes, conversation: SmtpConversation) -> bytes:
        """``raw`` with trusted-looking claims renamed and our verdict on top."""
        renamed = rename_claims(raw, self._claimed)
        if not self._config.verify:
            return renamed
        # The libraries are blocking; a thread keeps the listener answering meanwhile. The
        # context (and with it the resolver pyspf is to use) goes along to the thread.
        try:
            verdicts = await asyncio.to_thread(self.verify, raw, conversation)
        except Exception as error:
            # A library that breaks on a hostile mail must not make the sender retry it for
            # ever (a 4xx) nor let it through unverified: the verdict is "unknown", and a
            # reply that depends on it is held.
            log.exception("authentication check failed for mail from %s", conversation.mail_from)
            verdicts = [Verdict("dmarc", "temperror", comment=_clean(f"check failed: {error}"))]
        header = f"Authentication-Results: {self._config.authserv_id};\r\n\t" + ";\r\n\t".join(
            str(v) for v in verdicts
        )
        return header.encode("ascii", "replace") + b"\r\n" + renamed

    def verify(self, raw: bytes, conversation: SmtpConversation) -> list[Verdict]:
        """SPF, DKIM and DMARC verdicts for ``raw`` as it arrived (before any renaming)."""
        assert self._resolver is not None, "verify() needs authentication.verify = true"
        lookups = Lookups(self._resolver)
        with spf_lookups(lookups):
            spf_verdict = _check_spf(conversation, self._config.dns_timeout_seconds)
        dkim_verdicts = _check_dkim(raw, lookups)
        dmarc_verdict = _check_dmarc(raw, lookups, spf_verdict, conversation, dkim_verdicts)
        return [spf_verdict, *dkim_verdicts, dmarc_verdict]


def rename_claims(raw: bytes, authserv_ids: set[str]) -> bytes:
    """Rename every Authentication-Results header whose authserv-id is in ``authserv_ids``."""
    end = _HEADER_END.search(raw)
    head, body = (raw[: end.start()], raw[end.start() :]) if end else (raw, b"")
    lines = re.split(rb"(\r?\n)", head)
    for index in range(0, len(lines), 2):
        line = lines[index]
        name, colon, value = line.partition(b":")
        if not colon or name.strip().lower() != b"authentication-results":
            continue
        # The authserv-id may sit on a continuation line; read the whole folded header.
        folded = [value]
        for following in lines[index + 2 :: 2]:
            if not following[:1].isspace():
                break
            folded.append(following)
        authserv = b" ".join(folded).partition(b";")[0].split()
        if authserv and authserv[0].decode("ascii", "replace").lower() in authserv_ids:
            lines[index] = RENAMED + colon + value
    return b"".join(lines) + body


def _check_spf(conversation: SmtpConversation, timeout: float) -> Verdict:
    if not conversation.client_ip:
        return Verdict("spf", "none", comment="no client address")
    mail_from = conversation.mail_from or ""
    helo = conversation.helo or ""
    properties = (("smtp.mailfrom", mail_from or f"postmaster@{helo}"), ("smtp.helo", helo))
    try:
        query = spf.query(i=conversation.client_ip, s=mail_from, h=helo, timeout=timeout)
        result, _, explanation = query.check()
    except Exception as error:  # pyspf raises a few kinds on malformed input
        return Verdict("spf", "permerror", properties, comment=_clean(str(error)))
    return Verdict("spf", str(result), properties, comment=_clean(str(explanation)))


def _check_dkim(raw: bytes, lookups: Lookups) -> list[Verdict]:
    try:
        signer = dkim.DKIM(raw, logger=logging.getLogger("qa_mailer.ingest.dkim"))
        count = sum(1 for name, _ in signer.headers if name.lower() == b"dkim-signature")
    except Exception as error:
        return [Verdict("dkim", "permerror", comment=_clean(str(error)))]
    if not count:
        return [Verdict("dkim", "none")]
    verdicts = []
    for index in range(count):
        lookups.timed_out = False
        try:
            good = signer.verify(idx=index, dnsfunc=lookups.dkim_txt)
        except Exception as error:  # a hostile signature must fail alone, whatever it breaks
            good, comment = False, _clean(str(error))
        else:
            comment = ""
        fields = getattr(signer, "signature_fields", {}) or {}
        domain = fields.get(b"d", b"").decode("ascii", "replace").lower()
        result = "pass" if good else "temperror" if lookups.timed_out else "fail"
        verdicts.append(Verdict("dkim", result, (("header.d", domain or "none"),), comment))
    return verdicts


def _check_dmarc(
    raw: bytes,
    lookups: Lookups,
    spf_verdict: Verdict,
    conversation: SmtpConversation,
    dkim_verdicts: list[Verdict],
) -> Verdict:
    domain = _from_domain(raw)
    if domain is None:
        return Verdict("dmarc", "permerror", comment="not exactly one From address")
    properties = (("header.from", domain),)
    try:
        policy = _policy(lookups, domain)
    except DnsTimeout:
        return Verdict("dmarc", "temperror", properties, comment="DNS timeout")
    if policy is None:
        return Verdict("dmarc", "none", properties)
    dkim_strict = policy.get("adkim") == "s"
    spf_strict = policy.get("aspf") == "s"
    for verdict in dkim_verdicts:
        signed = dict(verdict.properties).get("header.d", "")
        if verdict.result == "pass" and _aligned(signed, domain, strict=dkim_strict):
            return Verdict("dmarc", "pass", properties, comment="aligned DKIM")
    mail_from = (conversation.mail_from or "").rpartition("@")[2].lower()
    if spf_verdict.result == "pass" and _aligned(mail_from, domain, strict=spf_strict):
        return Verdict("dmarc", "pass", properties, comment="aligned SPF")
    # A DNS failure on the way may have hidden a pass: unknown, not failed.
    if spf_verdict.result == "temperror" or any(v.result == "temperror" for v in dkim_verdicts):
        return Verdict("dmarc", "temperror", properties, comment="DNS timeout")
    return Verdict("dmarc", "fail", properties, comment=f"p={policy.get('p', 'none')}")


def _from_domain(raw: bytes) -> str | None:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    values = [str(v) for v in headers.get_all("From", [])]
    found = [address for _, address in getaddresses(values) if "@" in address]
    if len(found) != 1:
        return None
    try:
        return Address(addr_spec=found[0]).domain.lower() or None
    except (ValueError, IndexError):
        return found[0].rpartition("@")[2].lower() or None


def _policy(lookups: Lookups, domain: str) -> dict[str, str] | None:
    """The DMARC record's tags for ``domain`` (or its organisational domain), or None."""
    for candidate in dict.fromkeys((domain, _organisational(domain))):
        records = [r for r in lookups.txt(f"_dmarc.{candidate}") if r.startswith("v=DMARC1")]
        # RFC 7489, section 6.6.3: anything but exactly one record is no policy.
        if len(records) == 1:
            tags = (part.strip().partition("=") for part in records[0].split(";"))
            return {key.strip().lower(): value.strip().lower() for key, _, value in tags if key}
    return None


@lru_cache(maxsize=1024)
def _organisational(domain: str) -> str:
    return str(get_org_domain(domain)).lower()


def _aligned(other: str, domain: str, *, strict: bool) -> bool:
    if not other:
        return False
    if strict:
        return other == domain
    return _organisational(other) == _organisational(domain)


def _clean(text: str) -> str:
    # A comment in the header may not hold parentheses or line breaks of its own.
    return re.sub(r"[()\r\n\\]+", " ", text).strip()[:200]
