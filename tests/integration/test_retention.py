"""Retention: raw mail and sent mail bodies older than `privacy.keep_mail_days` are removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import OutboxMail, OutboxState, Question, RawMessage
from qa_mailer.db.engine import session_factory
from qa_mailer.organise import queues
from qa_mailer.organise.retention import expire_mail
from tests.helpers import FakeClock, make_mail, write_config
from tests.integration.test_pipeline import ask, make_desk


async def sizes(engine: AsyncEngine, raw: Any, key: Any) -> list[int]:
    async with session_factory(engine)() as tx:
        return [int(n) for n in await tx.scalars(select(func.length(raw)).order_by(key))]


@pytest.mark.asyncio
async def test_old_raw_mail_and_sent_bodies_are_removed(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, database_url, privacy={"keep_mail_days": 30})
    clock = FakeClock()
    desk = await make_desk(config, engine, clock)
    await desk.receive(ask())
    async with session_factory(engine).begin() as tx:
        # The acknowledgement went out; the expert's copy is still waiting to be sent.
        ack = await tx.scalar(select(OutboxMail).where(OutboxMail.key == "ack:Q-1"))
        assert ack is not None
        ack.state, ack.sent_at = OutboxState.SENT, clock.now()
    clock.advance(days=20)
    await desk.receive(make_mail(sender="petar@mebeli.example.bg", subject="[VC1] Q", body="Why?"))
    assert await expire_mail(session_factory(engine), config, clock.now()) == (0, 0)
    clock.advance(days=11)
    assert await expire_mail(session_factory(engine), config, clock.now()) == (1, 1)
    messages = await sizes(engine, RawMessage.raw, RawMessage.message_id)
    mails = await sizes(engine, OutboxMail.raw, OutboxMail.id)
    assert messages[0] == 0 and messages[1] > 0
    # The mail still to be sent keeps its body, whatever its age.
    assert mails[0] == 0 and all(size > 0 for size in mails[1:])
    async with session_factory(engine)() as tx:
        [first, _] = await tx.scalars(select(Question.body).order_by(Question.id))
    assert first == "Tko bi trebao voditi klaster?"
    # A mail whose body is gone cannot be sent again.
    [gone] = [m for m in await queues.outbox_mails(engine) if m.key == "ack:Q-1"]
    async with session_factory(engine).begin() as tx:
        row = await tx.get_one(OutboxMail, gone.id)
        row.state = OutboxState.FAILED
    with pytest.raises(queues.NotFound, match="its body was removed"):
        await queues.retry_outbox(engine, config, [gone.id])
    assert await expire_mail(session_factory(engine), config, clock.now()) == (0, 0)


def test_retention_is_off_unless_configured(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite+aiosqlite:///unused.sqlite")
    assert config.privacy.keep_mail is None
