"""Every inbound message is written raw, with where it came from, before anything reads it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.addresses import addresses_in
from qa_mailer.clock import Clock
from qa_mailer.db import ImapCursor, InboundMessage, MessageState, RawMessage
from qa_mailer.db.engine import SessionFactory
from qa_mailer.parse.headers import decoded, first_message_id

log = logging.getLogger("qa_mailer.ingest")


@dataclass(frozen=True)
class Envelope:
    """How the message reached us: by IMAP or SMTP/LMTP, with the SMTP envelope if any."""

    source: str
    mail_from: str | None = None
    rcpt_tos: tuple[str, ...] = ()
    peer: str | None = None


@dataclass(frozen=True)
class ImapOrigin:
    """Where in an IMAP account the message was found."""

    account: str
    mailbox: str
    uidvalidity: int
    uid: int


@dataclass(frozen=True)
class Headline:
    """What lists show of a message, read from its headers when it is stored."""

    message_id: str | None
    fingerprint: str
    sender: str | None
    subject: str | None


@dataclass(frozen=True)
class TooLarge:
    """A message over the size limit: only its headers are kept, parked for the organisers."""

    size: int  # the size the server reported for the whole message
    reason: str


# (raw, envelope, IMAP origin, headline, too large or None)
_Fingerprinted = tuple[bytes, Envelope, ImapOrigin | None, Headline, TooLarge | None]


@dataclass(frozen=True)
class Stored:
    id: int
    message_id: str | None
    duplicate: bool


def headline(raw: bytes) -> Headline:
    """The Message-ID, a dedupe fingerprint, the sender and the subject of a raw message.

    The fingerprint covers the Message-ID and the body with line ends normalised, so the same
    mail fetched twice, or delivered by two routes with different trace headers, matches; a
    mail without Message-ID is fingerprinted whole. Sender and subject are kept for the lists
    organisers read, even of a message that later fails to be processed.
    """
    head_end, body_start = _blank_line(raw)
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:head_end])
    message_id = first_message_id(headers.get("Message-ID"))
    digest = hashlib.sha256()
    if message_id:
        digest.update(message_id.encode("utf-8", "replace") + b"\0")
        _hash_normalised(digest, raw, body_start)
    else:
        _hash_normalised(digest, raw, 0)
    senders = addresses_in(decoded(headers.get("From")))
    subject = _clean(decoded(headers.get("Subject"))) if "Subject" in headers else None
    return Headline(
        message_id,
        digest.hexdigest(),
        _clean(senders[0])[:998] if senders else None,
        subject.strip()[:2000] if subject is not None else None,
    )


def _clean(text: str) -> str:
    # NUL characters are legal in hostile mail and illegal in PostgreSQL text.
    return text.replace("\x00", "")


class MessageStore:
    """Writes raw messages (and the IMAP cursor) in one transaction, then wakes the pipeline."""

    def __init__(self, sessions: SessionFactory, clock: Clock, on_stored: Callable[[], None]):
        self._sessions = sessions
        self._clock = clock
        self._on_stored = on_stored

    async def store(self, raw: bytes, envelope: Envelope, imap: ImapOrigin | None = None) -> Stored:
        """Store ``raw`` unless the same message is already stored; commit before returning."""
        return (await self.store_many([(raw, envelope, imap)]))[0]

    async def store_many(
        self, items: Sequence[tuple[bytes, Envelope, ImapOrigin | None]]
    ) -> list[Stored]:
        """Store several messages (one IMAP fetch batch) in one transaction, with the cursor."""
        prints = [(raw, envelope, imap, headline(raw), None) for raw, envelope, imap in items]
        results = await self._store_retrying(prints)
        for result in results:
            if result.duplicate:
                log.info("duplicate of message %d ignored: %s", result.id, result.message_id)
            else:
                log.info("stored message %d: %s", result.id, result.message_id)
        if any(not r.duplicate for r in results):
            self._on_stored()
        return results

    async def store_too_large(
        self, head: bytes, envelope: Envelope, imap: ImapOrigin | None, too_large: TooLarge
    ) -> Stored:
        """Record a message by its headers alone, quarantined with ``too_large.reason``.

        Nothing wakes the pipeline: there is nothing in it to process. It shows in the
        organisers' quarantine list, with the sender, subject and size of the real message.
        """
        item = (head, envelope, imap, headline(head), too_large)
        return (await self._store_retrying([item]))[0]

    async def _store_retrying(self, items: Sequence[_Fingerprinted]) -> list[Stored]:
        try:
            return await self._store_all(items)
        except IntegrityError:
            # Another connection stored one of them between our check and our insert.
            return await self._store_all(items)

    async def _store_all(self, items: Sequence[_Fingerprinted]) -> list[Stored]:
        async with self._sessions.begin() as session:
            found = await session.execute(
                select(InboundMessage.fingerprint, InboundMessage.id).where(
                    InboundMessage.fingerprint.in_({item[3].fingerprint for item in items})
                )
            )
            known = {fingerprint_: id_ for fingerprint_, id_ in found}
            rows: dict[str, InboundMessage] = {}
            for raw, envelope, imap, head, too_large in items:
                print_ = head.fingerprint
                if print_ in known or print_ in rows:
                    continue
                rows[print_] = self._row(raw, envelope, imap, head, too_large)
                session.add(rows[print_])
            origins = [item[2] for item in items if item[2] is not None]
            if origins:
                await advance_cursor(session, max(origins, key=lambda o: o.uid), self._clock)
            await session.flush()
            results: list[Stored] = []
            created: set[str] = set()
            for _, _, _, head, _ in items:
                message_id, print_ = head.message_id, head.fingerprint
                if print_ in known:
                    results.append(Stored(known[print_], message_id, duplicate=True))
                else:
                    results.append(Stored(rows[print_].id, message_id, duplicate=print_ in created))
                    created.add(print_)
            return results

    def _row(
        self,
        raw: bytes,
        envelope: Envelope,
        imap: ImapOrigin | None,
        head: Headline,
        too_large: TooLarge | None = None,
    ) -> InboundMessage:
        return InboundMessage(
            received_at=self._clock.now(),
            source=envelope.source,
            imap_account=imap.account if imap else None,
            imap_mailbox=imap.mailbox if imap else None,
            imap_uidvalidity=imap.uidvalidity if imap else None,
            imap_uid=imap.uid if imap else None,
            envelope_from=envelope.mail_from,
            envelope_to=",".join(envelope.rcpt_tos) or None,
            peer=envelope.peer,
            rfc_message_id=head.message_id,
            fingerprint=head.fingerprint,
            sender=head.sender,
            subject=head.subject,
            size=too_large.size if too_large else len(raw),
            raw_mail=RawMessage(raw=raw),
            state=MessageState.QUARANTINED if too_large else MessageState.RECEIVED,
            reason=too_large.reason if too_large else None,
            processed_at=self._clock.now() if too_large else None,
        )


async def advance_cursor(session: AsyncSession, origin: ImapOrigin, clock: Clock) -> None:
    """Record ``origin.uid`` as read; a new UIDVALIDITY starts the count again."""
    cursor = await session.scalar(
        select(ImapCursor).where(
            ImapCursor.account == origin.account, ImapCursor.mailbox == origin.mailbox
        )
    )
    if cursor is None:
        session.add(
            ImapCursor(
                account=origin.account,
                mailbox=origin.mailbox,
                uidvalidity=origin.uidvalidity,
                last_uid=origin.uid,
                updated_at=clock.now(),
            )
        )
        return
    if cursor.uidvalidity != origin.uidvalidity:
        cursor.uidvalidity, cursor.last_uid = origin.uidvalidity, origin.uid
    else:
        cursor.last_uid = max(cursor.last_uid, origin.uid)
    cursor.updated_at = clock.now()


async def read_cursor(
    sessions: SessionFactory, account: str, mailbox: str
) -> tuple[int, int] | None:
    """(UIDVALIDITY, last UID) stored for a mailbox, or None before its first message."""
    async with sessions() as session:
        row = (
            await session.execute(
                select(ImapCursor.uidvalidity, ImapCursor.last_uid).where(
                    ImapCursor.account == account, ImapCursor.mailbox == mailbox
                )
            )
        ).first()
    return None if row is None else (row[0], row[1])


def _blank_line(raw: bytes) -> tuple[int, int]:
    """Where the header block ends and where the body starts (the blank line between)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(separator)
        if at >= 0:
            return at, at + len(separator)
    return len(raw), len(raw)


def _hash_normalised(digest: hashlib._Hash, data: bytes, start: int) -> None:
    """Hash ``data[start:]`` with line ends normalised, one line at a time.

    What is hashed is exactly ``b"\\n".join(lines with trailing white space removed).strip()``,
    the form fingerprints have always had, but never built whole: a message near the size
    limit used to be copied four times over while it was fingerprinted.
    """
    blank_lines = 0
    first = True
    end = len(data)
    while start <= end:
        stop = data.find(b"\n", start, end)
        if stop < 0:
            stop = end
        # rstrip() also drops the CR of a CRLF line end.
        line = data[start:stop].rstrip()
        start = stop + 1
        if not line:
            # Blank lines count only between lines with text: strip() drops them at the ends.
            blank_lines += 1
            continue
        if first:
            digest.update(line.lstrip())
            first = False
        else:
            digest.update(b"\n" * (blank_lines + 1) + line)
        blank_lines = 0
