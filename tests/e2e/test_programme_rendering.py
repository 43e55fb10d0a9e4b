"""The programme report as a browser draws it: headless Chromium (Debian's), screenshot measured."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.classify.roster import load_roster
from qa_mailer.db.engine import session_factory
from qa_mailer.digest.programme import build_programme, render_programme
from qa_mailer.templates import Templates
from tests.integration.test_programme import programme_desk
from tests.png import Pixel, read_png

GREEN, AMBER = (0x2D, 0xA4, 0x4E), (0xD4, 0xA7, 0x2C)  # answered, pending (programme.html)
WIDTH = 800


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def screenshot(html: Path, png: Path) -> None:
    subprocess.run(
        [
            chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--window-size={WIDTH},1400",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def near(pixel: Pixel, colour: Pixel) -> bool:
    return all(abs(a - b) <= 8 for a, b in zip(pixel, colour, strict=True))


def runs(row: list[Pixel], colour: Pixel) -> list[int]:
    """The lengths of the runs of ``colour`` in a row of pixels."""
    found, length = [], 0
    for pixel in [*row, (0, 0, 0)]:
        if near(pixel, colour):
            length += 1
        elif length:
            found.append(length)
            length = 0
    return found


def bars(image: list[list[Pixel]]) -> list[tuple[int, int]]:
    """(green, amber) widths of each bar, top to bottom: rows of long runs, grouped."""
    found: list[tuple[int, int]] = []
    previous = False
    for row in image:
        green = [n for n in runs(row, GREEN) if n >= 20]
        amber = [n for n in runs(row, AMBER) if n >= 20]
        here = bool(green or amber)
        if here and not previous:
            found.append((sum(green), sum(amber)))
        previous = here
    return found


@pytest.mark.asyncio
async def test_the_programme_report_renders_with_bars_that_follow_the_counts(
    engine: AsyncEngine, tmp_path: Path, database_url: str
) -> None:
    desk = await programme_desk(engine, tmp_path / "desk", database_url)
    config = desk.config
    async with session_factory(engine)() as db:
        programme = await build_programme(
            db, config, load_roster(config.roster, config.countries), desk.clock.now()
        )
    html, png = tmp_path / "programme.html", tmp_path / "programme.png"
    html.write_text(render_programme(Templates(), programme).html, encoding="utf-8")
    screenshot(html, png)
    image = read_png(png.read_bytes())
    assert len(image[0]) == WIDTH
    # It rendered: the page is not blank, and there is dark text on it.
    assert sum(1 for row in image for p in row if max(p) < 80) > 2000
    # BG 4 asked, 2 answered; HR 2 asked, 2 answered; RS 1 asked, none answered; TR and RU
    # nothing, so no coloured bar at all.
    (bg_green, bg_amber), (hr_green, hr_amber), (rs_green, rs_amber) = bars(image)
    unit = (bg_green + bg_amber) / 4  # pixels per question
    assert unit > 30
    for measured, questions in [
        (bg_green, 2),
        (bg_amber, 2),
        (hr_green, 2),
        (hr_amber, 0),
        (rs_green, 0),
        (rs_amber, 1),
    ]:
        assert abs(measured - questions * unit) <= 3, (measured, questions, unit)
