"""The export for the final report: CSV that Excel opens in UTF-8, Markdown, HTML and JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import OutboxKind
from qa_mailer.organise import export
from tests.helpers import FakeClock, make_mail, write_config
from tests.integration.test_pipeline import Desk, ask, make_desk, reply_to


@pytest_asyncio.fixture
async def desk(engine: AsyncEngine, tmp_path: Path, database_url: str) -> Desk:
    desk = await make_desk(write_config(tmp_path, database_url), engine, FakeClock())
    await desk.receive(ask(message_id="<q1@drvo.example.hr>"))
    await desk.receive(
        make_mail(
            sender="Olga Smirnova <olga@mebel.example.ru>",
            subject="[VC2] Кто финансирует кластер?",
            body='Кто финансирует "кластер", | и как? Ёлка, щука.',
        )
    )
    await desk.receive(
        make_mail(
            sender="Ayse Yilmaz <ayse@mobilya.example.com.tr>",
            subject="[VC1] İhracat <soru>",
            body="Küme ihracata nasıl yardım eder? Ğ ş ı İ",
        )
    )
    [route, *_] = await desk.outbox(OutboxKind.ROUTE)
    desk.clock.advance(hours=3, minutes=30)
    await desk.receive(reply_to(route, "Komora bi trebala početi; tvrtke vode.\nDrugi red."))
    return desk


@pytest.mark.asyncio
async def test_csv_opens_with_the_right_characters(desk: Desk) -> None:
    data = await export.export_questions(desk.engine, desk.config, "csv")
    # A byte-order mark makes Excel read UTF-8; CRLF ends each row, as RFC 4180 has it.
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    header, *body = rows
    assert header[:3] == ["Question", "Asker", "Organisation"]
    by_ref = {row[header.index("Ref")]: dict(zip(header, row, strict=True)) for row in body}
    assert set(by_ref) == {"Q-1", "Q-2", "Q-3"}
    olga = by_ref["Q-2"]
    assert olga["Question"] == 'Кто финансирует "кластер", | и как? Ёлка, щука.'
    assert (olga["Asker"], olga["Organisation"], olga["Country"]) == (
        "Olga Smirnova",
        "Mebel",
        "RU",
    )
    assert olga["Answered"] == "" and olga["Answer"] == ""
    ana = by_ref["Q-1"]
    assert ana["Session"] == "VC2" and ana["Wait"] == "3 h 30 min"
    assert ana["Answer"] == "Komora bi trebala početi; tvrtke vode.\nDrugi red."
    assert by_ref["Q-3"]["Question"] == "Küme ihracata nasıl yardım eder? Ğ ş ı İ"


@pytest.mark.asyncio
async def test_json_markdown_and_html(desk: Desk) -> None:
    items = json.loads(await export.export_questions(desk.engine, desk.config, "json"))
    assert [item["ref"] for item in items] == ["Q-1", "Q-2", "Q-3"]
    assert items[0]["wait_seconds"] == 3.5 * 3600 and items[0]["session"] == 2
    assert items[1]["answered_at"] is None and items[1]["asker"] == "Olga Smirnova"
    only_vc1 = json.loads(await export.export_questions(desk.engine, desk.config, "json", 1))
    assert [item["ref"] for item in only_vc1] == ["Q-3"]
    markdown = (await export.export_questions(desk.engine, desk.config, "md")).decode()
    # A | in a cell is escaped and a line break kept, so the table holds together.
    assert 'Кто финансирует "кластер", \\| и как?' in markdown
    assert "Komora bi trebala početi; tvrtke vode.<br>Drugi red." in markdown
    html = (await export.export_questions(desk.engine, desk.config, "html")).decode()
    assert "İhracat &lt;soru&gt;" in html and '<meta charset="utf-8">' in html
