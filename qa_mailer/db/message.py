"""An inbound mail exactly as it arrived, and what became of it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qa_mailer.db.base import Base, UTCDateTime


class MessageState(StrEnum):
    RECEIVED = "received"  # stored raw, not yet processed
    PROCESSED = "processed"  # became a question, a follow-up or an answer
    IGNORED = "ignored"  # auto-reply, bounce, list mail or loop: recorded, never answered
    HELD = "held"  # waits for an organiser (an unproven or unmatched expert reply)
    QUARANTINED = "quarantined"  # processing failed; `qa-mailer quarantine release` retries it


class InboundMessage(Base):
    """A raw inbound message with where it came from; written before anything else happens."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_state_id", "state", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(8))  # "imap", "smtp" or "lmtp"
    imap_account: Mapped[str | None] = mapped_column(String(320))
    imap_mailbox: Mapped[str | None] = mapped_column(String(255))
    imap_uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    imap_uid: Mapped[int | None] = mapped_column(BigInteger)
    envelope_from: Mapped[str | None] = mapped_column(String(998))
    envelope_to: Mapped[str | None] = mapped_column(Text)  # comma-separated recipients
    peer: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    # Message-ID plus a hash of the body: the same mail fetched twice (an IMAP resync, or the
    # same mail arriving by IMAP and SMTP) has one fingerprint and is stored once.
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int]
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default=MessageState.RECEIVED)
    kind: Mapped[str | None] = mapped_column(String(16))
    sender: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
