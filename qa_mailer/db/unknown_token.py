"""Replies whose token matches no mail of ours, counted per sender to stop token guessing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from qa_mailer.db.base import Base, UTCDateTime


class UnknownTokenReply(Base):
    """One reply with an unknown token: held for an organiser, or ignored over the limit.

    A sender who sends more than the hourly limit is guessing, not replying: the rest of
    their replies are recorded here and ignored, and `held list` shows them as one line.
    """

    __tablename__ = "unknown_token_replies"
    __table_args__ = (Index("ix_unknown_token_replies_sender_at", "sender", "recorded_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    sender: Mapped[str] = mapped_column(String(998))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # True when the sender was over the limit: the message was ignored instead of held.
    ignored: Mapped[bool] = mapped_column(default=False)
