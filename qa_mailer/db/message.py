"""An inbound mail exactly as it arrived, and what became of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qa_mailer.db.base import Base, UTCDateTime, one_of


class MessageState(StrEnum):
    RECEIVED = "received"  # stored raw, waiting to be claimed
    PROCESSING = "processing"  # claimed by a worker (claimed_by) until lease_until
    PROCESSED = "processed"  # became a question, a follow-up or an answer
    IGNORED = "ignored"  # auto-reply, bounce, list mail or loop: recorded, never answered
    HELD = "held"  # waits for an organiser (an unproven or unmatched expert reply)
    QUARANTINED = "quarantined"  # processing failed; `qa-mailer quarantine release` retries it


class MessageKind(StrEnum):
    QUESTION = "question"
    FOLLOW_UP = "follow-up"
    REPLY = "reply"  # an expert's reply to a mail of ours
    EXPERT = "expert"  # mail from an expert that replies to nothing we sent
    AUTOMATIC = "automatic"  # machine-made: auto-reply, bounce, list mail, loop
    COMMAND = "command"  # an organiser's reply to a notice: approve or reject held answers


class MessageSource(StrEnum):
    IMAP = "imap"
    SMTP = "smtp"
    LMTP = "lmtp"
    FILE = "file"  # `qa-mailer ingest`


class InboundMessage(Base):
    """An inbound message: where it came from and what became of it; its mail is a RawMessage.

    Both rows are written before anything else happens. The mail itself lives in its own table
    so that this row stays small: claiming a message and finishing it each rewrite this row, and
    on SQLite a row is rewritten whole, several KB of mail included, and columns stored after a
    large one are read through its overflow pages.
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_state_id", "state", "id"),
        one_of("state", MessageState),
        one_of("kind", MessageKind),
        one_of("source", MessageSource),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(8))
    imap_account: Mapped[str | None] = mapped_column(String(320))
    imap_mailbox: Mapped[str | None] = mapped_column(String(255))
    imap_uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    imap_uid: Mapped[int | None] = mapped_column(BigInteger)
    envelope_from: Mapped[str | None] = mapped_column(String(998))
    envelope_to: Mapped[str | None] = mapped_column(Text)  # comma-separated recipients
    peer: Mapped[str | None] = mapped_column(String(255))
    # The Message-ID header (RFC 5322), as written by the sender's client.
    rfc_message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    # Message-ID plus a hash of the body: the same mail fetched twice (an IMAP resync, or the
    # same mail arriving by IMAP and SMTP) has one fingerprint and is stored once.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), default=MessageState.RECEIVED)
    kind: Mapped[str | None] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The claim: which worker processes the message, until when, and how many times a worker
    # has claimed it (a message whose worker keeps dying is quarantined, not retried forever).
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    # When the organisers were told that this message waits for them (held or quarantined);
    # a release clears it, so a message held or quarantined again is told again.
    organisers_told_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Loaded only when asked for (selectinload): lists and lookups never read the mail.
    raw_mail: Mapped[RawMessage] = relationship(lazy="raise", passive_deletes=True)


class RawMessage(Base):
    """The bytes of an inbound mail exactly as they arrived (or its headers, if it was too large).

    Retention and erasure empty ``raw`` and keep the row: an empty mail means "no longer kept".
    """

    __tablename__ = "raw_messages"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    raw: Mapped[bytes] = mapped_column(LargeBinary)
