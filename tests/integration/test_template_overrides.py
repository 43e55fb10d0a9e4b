"""An organiser's templates: they get the participant's country and language, a broken one stops
start-up with its file and line, and one that fails on some mail never quarantines a question."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.cli import main
from qa_mailer.config import Config
from qa_mailer.db import InboundMessage, OutboxKind
from qa_mailer.db.engine import session_factory
from tests.helpers import FakeClock, make_mail, write_config
from tests.integration.test_pipeline import Desk, make_desk, plain
from tests.servers.ports import free_port

RU = "Иван Петров <ivan@zavod.example.ru>"
HR = "Ana Horvat <ana@drvo.example.hr>"


def override(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "my-templates"
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


async def desk_with(tmp_path: Path, engine: AsyncEngine, database_url: str, folder: Path) -> Desk:
    config = write_config(
        tmp_path,
        database_url,
        service={"name": "Q&A", "address": "qa@clusters.example.org", "templates": str(folder)},
    )
    return await make_desk(config, engine, FakeClock())


@pytest.mark.asyncio
async def test_an_override_can_ask_for_the_participants_country_and_language(
    tmp_path: Path, engine: AsyncEngine, database_url: str
) -> None:
    # What issue 8 saw quarantine every question: `country` was not given to templates.
    folder = override(
        tmp_path,
        "ru/ack.txt",
        '{% if country == "RU" %}Уважаемый участник из России{% else %}?{% endif %}, '
        "{{ ref }} ({{ language }}).\n",
    )
    desk = await desk_with(tmp_path, engine, database_url, folder)
    await desk.receive(make_mail(sender=RU, subject="[VC1] Вопрос", body="Как начать кластер?"))
    await desk.receive(make_mail(sender=HR, subject="[VC1] Pitanje", body="Tko vodi klaster?"))
    acks = {m["To"].addresses[0].addr_spec: plain(m) for m in await desk.outbox(OutboxKind.ACK)}
    assert acks["ivan@zavod.example.ru"] == "Уважаемый участник из России, Q-1 (ru).\n"
    # Croatian has no override: the shipped Croatian acknowledgement.
    assert "zahvaljujemo Vam na pitanju." in acks["ana@drvo.example.hr"]


@pytest.mark.asyncio
async def test_an_override_that_fails_on_one_mail_falls_back_and_quarantines_nothing(
    tmp_path: Path, engine: AsyncEngine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Renders for most names (and for the start-up check's sample), fails for a name of 8
    # letters: a mistake that only real mail shows.
    folder = override(
        tmp_path, "ack.txt", "{{ 100 // (participant_name | length - 8) }} {{ ref }}\n"
    )
    desk = await desk_with(tmp_path, engine, database_url, folder)
    with caplog.at_level(logging.ERROR, logger="qa_mailer.templates"):
        await desk.receive(
            make_mail(sender="John Doe <john@firm.example.org>", subject="[VC1] Q", body="How?")
        )
    async with session_factory(desk.engine)() as tx:
        states = list(await tx.scalars(select(InboundMessage.state)))
    assert states == ["processed"]
    [ack] = await desk.outbox(OutboxKind.ACK)
    assert "thank you: your question has reached" in plain(ack)
    assert "template ack.txt (en) failed, the shipped one is used instead" in caplog.text


def test_a_template_that_cannot_render_stops_serve_naming_its_file_and_line(
    tmp_path: Path, database_url: str, engine: AsyncEngine
) -> None:
    folder = override(
        tmp_path, "it/to_expert.txt", "Domanda {{ question.ref }}\n{{ no_such_thing }}\n"
    )
    config: Config = write_config(
        tmp_path,
        database_url,
        service={"name": "Q&A", "address": "qa@clusters.example.org", "templates": str(folder)},
        listener={"port": free_port()},
        programme={"expert_language": "it"},
    )
    # (The engine fixture has migrated the database.)
    result = CliRunner().invoke(main, ["--config", str(config.path), "serve"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {folder / 'it' / 'to_expert.txt'} (it) cannot be")
    assert f"{folder / 'it' / 'to_expert.txt'}:2: 'no_such_thing' is undefined" in result.output
