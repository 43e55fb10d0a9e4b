"""The token of a notice to the organisers: a reply that brings it back may decide held answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from qa_mailer.db.base import Base, UTCDateTime


class NoticeToken(Base):
    """Made with the notice, like an expert's reply token: random, stored, good for a while.

    ``answers`` are the ids of the held answers the notice listed: a reply to it may approve
    or reject those and no others ("approve all" means all of these).
    """

    __tablename__ = "notice_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    answers: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
