"""A failed delivery that a bounce reported: which address, for good or for now, of which mail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from qa_mailer.db.base import Base, UTCDateTime


class Bounce(Base):
    """One address in one bounce; the same bounce processed again adds nothing.

    ``outbox_id`` and ``question_id`` name the mail of ours that bounced and the question it
    was about, when the bounce names a Message-ID we sent.
    """

    __tablename__ = "bounces"
    __table_args__ = (UniqueConstraint("message_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    address: Mapped[str] = mapped_column(String(320), index=True)
    permanent: Mapped[bool]
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    question_id: Mapped[int | None] = mapped_column(ForeignKey("questions.id"), index=True)
    kind: Mapped[str | None] = mapped_column(String(16))  # the outbox kind: answer, ack, ...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
