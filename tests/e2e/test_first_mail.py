"""The first mail a newcomer sends: the exact line scripts/try.sh prints, to a running `serve`."""

from __future__ import annotations

import mailbox
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import ROOT, write_config
from tests.servers.ports import free_port


def first_mail_command() -> str:
    """The Python one-liner try.sh tells the user to run, as the shell would pass it."""
    script = (ROOT / "scripts" / "try.sh").read_text()
    match = re.search(r'python -c \\"(.*)\\""', script)
    assert match, "try.sh no longer prints a test mail command"
    return match.group(1).replace("\\\\r\\\\n", "\\r\\n")


def test_the_test_mail_try_sh_suggests_is_answered(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", listener={"port": port}
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    qa = [sys.executable, "-m", "qa_mailer", "--config", str(config.path)]
    subprocess.run([*qa, "db", "upgrade"], check=True, env=env, capture_output=True)
    process = subprocess.Popen(
        [*qa, "serve"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        code = first_mail_command().replace("8025", str(port))
        deadline = time.monotonic() + 60
        while subprocess.run([sys.executable, "-c", code], capture_output=True).returncode:
            assert time.monotonic() < deadline, "the listener did not come up"
            time.sleep(0.1)
        outbox = mailbox.Maildir(config.outgoing.maildir, create=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(outbox) < 2:
            time.sleep(0.05)
        subjects = sorted(str(m["Subject"]) for m in outbox)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    # The acknowledgement to the sender and the question's copy to the expert.
    assert len(subjects) == 2, output
    assert any(s.startswith("[Q-1]") for s in subjects), subjects


def test_status_says_why_mail_was_ignored(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", listener={"port": port}
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    qa = [sys.executable, "-m", "qa_mailer", "--config", str(config.path)]
    subprocess.run([*qa, "db", "upgrade"], check=True, env=env, capture_output=True)
    # The test mail as the README used to give it: no From header.
    headless = tmp_path / "no-from.eml"
    headless.write_bytes(b"Subject: [VC1] My question\r\n\r\nHow do clusters start?\r\n")
    subprocess.run([*qa, "ingest", str(headless)], check=True, env=env, capture_output=True)
    process = subprocess.Popen(
        [*qa, "serve"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            status = subprocess.run([*qa, "status"], env=env, capture_output=True, text=True).stdout
            if "1 ignored" in status or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert "1 ignored (automatic)" in status, status
    assert "latest ignored (up to 5):" in status
    assert "M-1" in status and "daemon-sender: no From address" in status, status
