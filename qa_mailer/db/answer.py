"""The expert's answer to one question, published or held for an organiser."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qa_mailer.db.base import Base, UTCDateTime, one_of
from qa_mailer.db.question import Question


class AnswerState(StrEnum):
    PUBLISHED = "published"  # mailed (or queued) to the participant
    HELD = "held"  # not proven to come from the expert: an organiser decides
    REJECTED = "rejected"  # an organiser decided against it


class Answer(Base):
    """One answer; a reply that answers three questions makes three of these."""

    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("question_id", "message_id"), one_of("state", AnswerState))

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    expert_address: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    question: Mapped[Question] = relationship(lazy="raise")
