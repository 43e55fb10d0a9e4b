"""A digest that was produced, so an automatic one goes out exactly once per session and day."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from qa_mailer.db.base import Base, UTCDateTime


class DigestRun(Base):
    """``automatic_key`` is set only for an automatic digest ("VC3:2026-12-18", the session and
    the organisers' day); it is unique, so two processes cannot both send one day's digest.
    The programme report is recorded as session 0 ("programme:2026-12-18").
    ``closing`` marks the digest that closed the session: after it, only a new question
    brings another one.
    """

    __tablename__ = "digest_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_no: Mapped[int]
    automatic_key: Mapped[str | None] = mapped_column(String(32), unique=True)
    closing: Mapped[bool] = mapped_column(default=False, server_default=false())
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
