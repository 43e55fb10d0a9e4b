"""A mail to the expert with one or more questions, and the secret token its reply must carry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qa_mailer.db.base import Base, UTCDateTime
from qa_mailer.db.question import NewQuestion, Question

dispatch_questions = Table(
    "dispatch_questions",
    Base.metadata,
    Column("dispatch_id", ForeignKey("dispatches.id"), primary_key=True),
    # A question is put before the expert once: two processes dispatching the same waiting
    # questions cannot both succeed.
    Column("question_id", ForeignKey("questions.id"), primary_key=True, unique=True),
)


class Dispatch(Base):
    """The token is unguessable; a reply proves it answers this mail by bringing the token back."""

    __tablename__ = "dispatches"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    # The random part of the mail's Message-ID: it says which mail a reply answers without
    # revealing the token (see answer/tokens.py).
    route_key: Mapped[str] = mapped_column(String(32), unique=True)
    session_no: Mapped[int]
    experts: Mapped[str] = mapped_column(Text)  # comma-separated addresses it went to
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    questions: Mapped[list[Question]] = relationship(
        secondary=dispatch_questions, lazy="raise", order_by=Question.id
    )


@dataclass(slots=True, eq=False)
class NewDispatch:
    """A dispatch as it is written in bulk, with the questions it carries."""

    id: int
    token: str
    route_key: str
    session_no: int
    experts: str
    created_at: datetime
    questions: list[Question | NewQuestion] = field(default_factory=list)
