"""`qa-mailer demo`, as a newcomer runs it: the questions answered and digested, files in place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT


def test_the_demo_tells_the_whole_story(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "qa_mailer",
            "--config",
            str(ROOT / "config.toml"),
            "demo",
            "--dir",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    assert 'the expert replied to "[VC1] 5 questions: [Q-1] [Q-2] [Q-3] [Q-4] [Q-5]"' in output
    assert 'receipt to the expert: "Receipt: 5 answered, 0 open [VC1]"' in output
    assert "Total: 5 questions, 5 answered, 0 pending." in output
    for country in ("Bulgaria (BG)", "Croatia (HR)", "Serbia (RS)", "Turkey (TR)", "Russia (RU)"):
        assert f"== {country}: 1 asked, 1 answered, 0 pending" in output
    assert "Какую роль играют университеты" in output  # windows-1251 came out readable
    assert "küme, küçük mobilya üreticilerinin" in output  # HTML-only ISO-8859-9 too
    assert "1 ignored (automatic)" in output
    assert (folder / "digests" / "VC1-digest.txt").exists() and (
        folder / "digests" / "VC1-digest.html"
    ).exists()
    # Five acknowledgements, one mail to the expert with all five questions, five answers, the
    # expert's receipt and the digest; nothing to the auto-reply.
    mails = list((folder / "outbox" / "new").iterdir())
    assert len(mails) == 13
    assert not any(
        b"olga.smirnova@mebel-example.ru" in m.read_bytes().split(b"\r\n\r\n")[0] for m in mails
    )


def test_the_demo_in_try_sh_tells_its_story_without_log_lines(tmp_path: Path) -> None:
    script = (ROOT / "scripts" / "try.sh").read_text()
    assert ".venv/bin/qa-mailer --log-file var/demo.log demo\n" in script
    log = tmp_path / "demo.log"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "qa_mailer",
            "--config",
            str(ROOT / "config.toml"),
            "--log-file",
            str(log),
            "demo",
            "--dir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert " INFO " not in result.stdout and "Total: 5 questions" in result.stdout
    assert " INFO qa_mailer" in log.read_text()
