"""Running qa-mailer as a service: version, log level and file, the systemd unit, safe downgrade."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner

from qa_mailer.cli import SetupFailed, main
from tests.helpers import ROOT, make_mail, write_config
from tests.servers.ports import free_port


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == f"qa-mailer, version {version('qa-mailer')}\n"


def test_log_level_and_log_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    log = tmp_path / "logs" / "qa-mailer.log"
    log.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    qa = [sys.executable, "-m", "qa_mailer", "--config", str(config.path)]
    subprocess.run([*qa, "db", "upgrade"], check=True, env=env, capture_output=True)

    def ingest(*options: str) -> subprocess.CompletedProcess[str]:
        # A new question each time: the same mail again is a duplicate.
        mail = tmp_path / "question.eml"
        mail.write_bytes(make_mail(sender="ana@drvo.example.hr", subject="[VC1] Q", body="Why?"))
        return subprocess.run(
            [*qa, *options, "ingest", str(mail)], env=env, capture_output=True, text=True
        )

    quiet = ingest("--log-file", str(log))
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert "stored message" not in log.read_text()  # warnings only, by default
    loud = ingest("--log-level", "info", "--log-file", str(log))
    assert loud.returncode == 0 and loud.stderr == "", loud.stderr
    assert " INFO qa_mailer.ingest: stored message 2" in log.read_text()
    on_stderr = ingest("--log-level", "INFO")
    assert "INFO qa_mailer.ingest: stored message 3" in on_stderr.stderr, on_stderr.stderr
    as_json = ingest("--log-level", "info", "--log-format", "json", "--log-file", str(log))
    assert as_json.returncode == 0 and as_json.stderr == ""
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "info" and entry["logger"] == "qa_mailer.ingest"
    assert entry["message"].startswith("stored message 4") and entry["time"].endswith("+00:00")
    bad = ingest("--log-file", str(tmp_path / "no-such-folder" / "x.log"))
    assert bad.returncode == 2 and "--log-file" in bad.stderr and "cannot write to it" in bad.stderr


def test_downgrade_to_base_asks_first(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", listener={"port": free_port()}
    )
    runner = CliRunner()
    qa = ["--config", str(config.path)]
    assert runner.invoke(main, [*qa, "db", "upgrade"]).exit_code == 0
    refused = runner.invoke(main, [*qa, "db", "downgrade", "base"], input="n\n")
    assert refused.exit_code == 1 and "removes every table" in refused.output
    assert "Aborted" in refused.output
    assert "not initialised" not in runner.invoke(main, [*qa, "db", "current"]).output
    done = runner.invoke(main, [*qa, "db", "downgrade", "base", "--yes"])
    assert done.exit_code == 0, done.output
    assert "database: not initialised" in runner.invoke(main, [*qa, "db", "current"]).output


def test_the_systemd_unit_is_valid_and_does_not_restart_on_a_wrong_setting(
    tmp_path: Path,
) -> None:
    unit = (ROOT / "deploy" / "qa-mailer.service").read_text()
    assert f"RestartPreventExitStatus={SetupFailed.exit_code}" in unit
    assert "EnvironmentFile=/etc/qa-mailer/secrets.env" in unit
    # systemd checks that the programme exists: point the unit at this checkout's.
    programme = shutil.which("qa-mailer", path=str(Path(sys.executable).parent))
    assert programme is not None
    installed = tmp_path / "qa-mailer.service"
    installed.write_text(unit.replace("/opt/qa-mailer/.venv/bin/qa-mailer", programme))
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(installed)], capture_output=True, text=True
    )
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
