"""A participant's conversation within one session: a question and its follow-ups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qa_mailer.db.base import Base, UTCDateTime


class Thread(Base):
    """Threads are what the digest groups: by session, then by country."""

    __tablename__ = "threads"
    __table_args__ = (Index("ix_threads_session_country", "session_no", "country"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_no: Mapped[int]
    session_source: Mapped[str] = mapped_column(String(16))  # the rule that chose the session
    country: Mapped[str | None] = mapped_column(String(2))  # None: unassigned, for organisers
    country_source: Mapped[str | None] = mapped_column(String(16))
    participant_email: Mapped[str] = mapped_column(String(320), index=True)
    participant_name: Mapped[str] = mapped_column(String(255))
    subject_key: Mapped[str] = mapped_column(Text)  # normalised subject, for follow-ups
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
