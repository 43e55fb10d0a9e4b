"""A digest that was produced, so the automatic one goes out exactly once per session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from qa_mailer.db.base import Base, UTCDateTime


class DigestRun(Base):
    """``automatic_key`` is set (to "VC3") only for the automatic digest; it is unique."""

    __tablename__ = "digest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_no: Mapped[int]
    automatic_key: Mapped[str | None] = mapped_column(String(16), unique=True)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
