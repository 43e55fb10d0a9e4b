"""A participant's conversation within one session: a question and its follow-ups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

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
    # The language the participant is written to in ("ru", "sr-Latn", ...): the roster's,
    # else the one their question is written in, else their country's, else English.
    language: Mapped[str] = mapped_column(String(16), default="en")


@dataclass(slots=True, eq=False)
class NewThread:
    """A thread a batch of questions starts, before it is written (in bulk, with its id)."""

    session_no: int
    session_source: str
    country: str | None
    country_source: str | None
    participant_email: str
    participant_name: str
    subject_key: str
    created_at: datetime
    language: str = "en"
    id: int | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "id",
        "session_no",
        "session_source",
        "country",
        "country_source",
        "participant_email",
        "participant_name",
        "subject_key",
        "created_at",
        "language",
    )
