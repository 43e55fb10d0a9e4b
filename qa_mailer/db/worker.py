"""The processes serving one database, and the leases that let only one of them do a job.

Every `qa-mailer serve` (and every command that sends) registers as a worker and keeps a
heartbeat. A worker whose heartbeat stops is presumed dead by the others: what it had claimed
goes back to the queue and its leases are freed, so another process takes over.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qa_mailer.db.base import Base, UTCDateTime


class Role(StrEnum):
    """What a `serve` process does; by default all of it."""

    INTAKE = "intake"  # the SMTP/LMTP listener and the IMAP poller
    PROCESS = "process"  # received messages to questions, answers and outgoing mail
    SEND = "send"  # the outbox to the relay or the Maildir
    SCHEDULE = "schedule"  # automatic digests and batch mails to the experts


class Worker(Base):
    """One process: who it is, what it does, and when it last said it was alive."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    roles: Mapped[str] = mapped_column(String(64))  # comma-separated Role values, or "cli"
    version: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stop_reason: Mapped[str | None] = mapped_column(Text)


class Lease(Base):
    """A job only one process may do at a time (polling one IMAP mailbox, the scheduler)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(400), primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
