"""A question: one participant mail, with its reference Q-n and its place in a thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qa_mailer.db.base import Base, UTCDateTime, one_of
from qa_mailer.db.message import InboundMessage
from qa_mailer.db.thread import Thread

# The states live in qa_mailer/states.py, where the command line reads them without SQLAlchemy.
from qa_mailer.states import QuestionState as QuestionState


class Question(Base):
    """What a participant asked. ``ref`` (Q-17) is what everyone quotes."""

    __tablename__ = "questions"
    __table_args__ = (
        # By state, then session, then id: a session's latest open questions are read from
        # the end of its range in each open state (migration 0012).
        Index("ix_questions_state_session_id", "state", "session_no", "id"),
        one_of("state", QuestionState),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("threads.id"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    follow_up_to: Mapped[int | None] = mapped_column(ForeignKey("questions.id"))
    # Its thread's session, kept here too (and moved with it) so that a session's latest open
    # questions are found by an index (migration 0012).
    session_no: Mapped[int]
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=QuestionState.NEW)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the participant's acknowledgement was queued (None: not acknowledged, e.g. a
    # follow-up, or over the hourly limit). The hourly limit counts these.
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The participant's attachments as the expert's copy lists them: name, type, size.
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=lambda: [])
    # Why an organiser closed it (state "closed"); kept if an answer comes after all.
    closed_reason: Mapped[str | None] = mapped_column(Text)
    # The question an organiser merged this one into: every answer published to that one is
    # sent to this one's participant too, in their own thread. Kept once answered.
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("questions.id"), index=True)
    # An open question of the same session this one closely resembles when it came in
    # (classify/similar.py): the expert's copy and the digest say so.
    similar_to: Mapped[int | None] = mapped_column(ForeignKey("questions.id"))

    thread: Mapped[Thread] = relationship(lazy="raise")
    message: Mapped[InboundMessage] = relationship(lazy="raise")

    @property
    def ref(self) -> str:
        return f"Q-{self.id}"


@dataclass(slots=True, eq=False)
class NewQuestion:
    """A question of a batch before it is written (in bulk, with an id taken in advance)."""

    message_id: int
    session_no: int
    subject: str
    body: str
    asked_at: datetime
    state: str = QuestionState.NEW
    id: int | None = None
    thread_id: int | None = None
    follow_up_to: int | None = None
    acknowledged_at: datetime | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    similar_to: int | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "id",
        "thread_id",
        "message_id",
        "follow_up_to",
        "session_no",
        "subject",
        "body",
        "state",
        "asked_at",
        "acknowledged_at",
        "attachments",
        "similar_to",
    )

    @property
    def ref(self) -> str:
        return f"Q-{self.id}"
