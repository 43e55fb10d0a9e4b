"""Every outgoing mail, written in the transaction that decided to send it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qa_mailer.db.base import Base, UTCDateTime, one_of

# The states live in qa_mailer/states.py, where the command line reads them without SQLAlchemy.
from qa_mailer.states import OutboxState as OutboxState


class RecipientOutcome(StrEnum):
    ACCEPTED = "accepted"  # the relay took the mail for this recipient
    REFUSED = "refused"  # refused for good (5xx, or 4xx until max_attempts)
    DEFERRED = "deferred"  # refused for now (4xx): retried, for this recipient alone


class OutboxKind(StrEnum):
    ACK = "ack"  # acknowledgement to a participant
    ROUTE = "route"  # question(s) to the expert
    ANSWER = "answer"  # answer to a participant
    RECEIPT = "receipt"  # receipt to the expert for a processed reply
    DIGEST = "digest"  # digest to the organisers
    HELD = "held"  # to the expert and organisers: a reply that looked automatic was held
    NOTICE = "notice"  # to the organisers: held and quarantined messages wait for them


class OutboxMail(Base):
    """The mail is stored whole, with its final Message-ID: a retry resends the same bytes.

    ``key`` says what the mail is for ("ack:Q-17", "route:D-4", "answer:A-9", "receipt:M-31",
    "digest:R-2"); it is unique, so whatever queues a mail twice (a replayed message, two
    organisers approving the same answer) fails at the insert instead of mailing twice.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_due", "state", "next_attempt_at"),
        one_of("state", OutboxState),
        one_of("kind", OutboxKind),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    # The Message-ID header of the mail (RFC 5322); replies to it carry it in In-Reply-To.
    rfc_message_id: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    question_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id"), index=True)
    dispatch_id: Mapped[int | None] = mapped_column(ForeignKey("dispatches.id"))
    envelope_from: Mapped[str] = mapped_column(String(320))
    # The envelope recipients, in order, as a JSON list: an address may hold a comma
    # ("p6,x"@firm.example.bg), so no separator can join them.
    recipients: Mapped[list[str]] = mapped_column(JSON)
    # What the relay said to each recipient so far, by address (see RecipientOutcome):
    # {"outcome": "accepted" | "refused" | "deferred", "code": 550, "text": "..."}. A
    # recipient with no entry, or a deferred one, is sent to on the next attempt.
    outcomes: Mapped[dict[str, dict[str, Any]]] = mapped_column(JSON, default=lambda: {})
    # How many recipients were refused for good; a sent mail with any is "partly refused".
    refused: Mapped[int] = mapped_column(default=0, server_default="0")
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True, deferred_raiseload=True)
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="SET NULL"))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
