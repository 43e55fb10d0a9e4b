"""The container files, as far as they can be tried without a container engine.

No Docker or Podman engine runs on the test machines (only the client), so the image is not
built here. What is tried: the command the Containerfile runs, in a process with the image's
environment (its ENV lines, the paths mapped into a temporary folder) on PostgreSQL, as the
compose file wires it; and that the compose file's variables and mounts are the ones the
config and the image read.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from qa_mailer.config import load_config
from tests.conftest import POSTGRES_ADMIN
from tests.helpers import QA, make_mail, write_config
from tests.servers.ports import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def final_stage(containerfile: Path) -> list[tuple[str, str]]:
    """The instructions of the last stage as (INSTRUCTION, arguments), continuations joined."""
    text = re.sub(r"\\\n\s*", " ", containerfile.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    instructions = [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def image() -> dict[str, Any]:
    """What the final stage sets: ENV, WORKDIR, VOLUME, ENTRYPOINT, CMD, USER, COPY targets."""
    found: dict[str, Any] = {"env": {}, "copies": {}}
    for name, arguments in final_stage(DEPLOY / "Containerfile"):
        if name == "ENV":
            for pair in re.findall(r'(\w+)=("[^"]*"|\S+)', arguments):
                found["env"][pair[0]] = pair[1].strip('"')
        elif name in ("ENTRYPOINT", "CMD", "VOLUME"):
            found[name.lower()] = json.loads(arguments)
        elif name in ("WORKDIR", "USER", "FROM"):
            found[name.lower()] = arguments
        elif name == "COPY" and not arguments.startswith("--from"):
            source, target = arguments.split()
            found["copies"][target] = source
    return found


def test_the_image_runs_as_a_user_on_debian_slim_python_311_with_a_volume_for_var() -> None:
    built = image()
    assert built["from"] == "python:3.11-slim-bookworm"
    assert built["user"] not in ("", "root", "0")
    config = Path(built["env"]["QA_MAILER_CONFIG"])
    # var/ beside the config: every relative path in config.toml lands in the volume.
    assert built["volume"] == [str(config.parent / "var")]
    assert built["workdir"] == str(config.parent)
    entrypoint = built["entrypoint"][0]
    assert (REPO / built["copies"][entrypoint]).stat().st_mode & 0o111, "not executable"


@pytest.mark.postgres
def test_the_containers_command_serves_on_postgresql_with_the_images_environment(
    tmp_path: Path, postgres_url: str
) -> None:
    asyncio.run(_create(postgres_url.rsplit("/", 1)[1]))
    built = image()
    # The image's folders, mapped into the temporary folder.
    home = Path(built["env"]["QA_MAILER_CONFIG"]).parent
    root = tmp_path / "root"
    mapped_home = root / home.relative_to("/")
    mapped_home.mkdir(parents=True)
    (mapped_home / "var").mkdir()
    # The organiser's config and roster, as the compose file mounts them; only the listener's
    # port differs, so that test runs do not collide.
    port = free_port()
    config_text = (REPO / "config.toml").read_text(encoding="utf-8")
    (mapped_home / "config.toml").write_text(
        config_text.replace("port = 8025", f"port = {port}", 1), encoding="utf-8"
    )
    shutil.copy(REPO / "roster.csv", mapped_home / "roster.csv")
    venv_bin = Path(sys.executable).parent
    environment = {
        key: value.replace(str(home), str(mapped_home)).replace("/opt/qa-mailer/bin", str(venv_bin))
        for key, value in built["env"].items()
    }
    environment["PATH"] = environment["PATH"].replace("$PATH", os.environ["PATH"])
    # As compose.yaml sets it, pointed at the test's PostgreSQL instead of the db service.
    environment["QA_MAILER_DATABASE_URL"] = postgres_url
    entrypoint = REPO / built["copies"][built["entrypoint"][0]]
    process = subprocess.Popen(
        [str(entrypoint), *built["cmd"]],
        cwd=mapped_home,
        env={"HOME": str(tmp_path), **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_port(port, process)
        # The README's first test mail, over the listener: it is taken in on PostgreSQL.
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail(
                "ana@drvo.example.hr",
                [QA],
                make_mail(sender="Ana <ana@drvo.example.hr>", subject="[VC1] Container?"),
            )
        stored = asyncio.run(_count(postgres_url, "SELECT count(*) FROM messages"))
        assert stored == 1
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "qa-mailer running for" in output
    assert not (mapped_home / "var" / "qa-mailer.db").exists(), "used SQLite, not PostgreSQL"


def test_the_compose_file_names_what_the_config_and_the_image_read(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    service = compose["services"]["qa-mailer"]
    database = compose["services"]["db"]
    built = image()
    context = (DEPLOY / service["build"]["context"]).resolve()
    assert context == REPO and context / service["build"]["dockerfile"] == DEPLOY / "Containerfile"
    # Mounts: the config where the image looks for it, the roster beside it, var/ on the volume.
    mounts = {m.split(":")[1]: m.split(":")[0] for m in service["volumes"]}
    config_path = built["env"]["QA_MAILER_CONFIG"]
    assert service["environment"]["QA_MAILER_CONFIG"] == config_path
    assert (DEPLOY / mounts[config_path]).resolve() == REPO / "config.toml"
    assert built["volume"][0] in mounts and mounts[built["volume"][0]] in compose["volumes"]
    shipped = load_config(REPO / "config.toml")
    roster = str(Path(config_path).parent / shipped.roster.relative_to(REPO))
    assert (DEPLOY / mounts[roster]).resolve() == REPO / "roster.csv"
    assert shipped.outgoing.maildir.is_relative_to(REPO / "var"), "outside the volume"
    # Variables: each one the config reads under its default name.
    names = set(service["environment"])
    for line in (DEPLOY / "secrets.env.example").read_text(encoding="utf-8").splitlines():
        if re.match(r"#? ?QA_MAILER_\w+=", line):
            names.add(line.lstrip("# ").split("=")[0])
    config = write_config(
        tmp_path,
        "sqlite+aiosqlite:///x.db",
        imap={"enabled": True, "host": "imap.example.org", "username": QA},
    )
    assert config.imap is not None
    # smtp.password_env and oauth2.client_secret_env have no default: the names config.toml
    # shows for them.
    shown = re.findall(
        r'^# (?:password|client_secret)_env = "(\w+)"',
        (REPO / "config.toml").read_text(encoding="utf-8"),
        re.MULTILINE,
    )
    read = {"QA_MAILER_CONFIG", "QA_MAILER_DATABASE_URL", config.imap.password_env, *shown}
    assert names == read, names ^ read
    # The URL reaches the db service with its database and user.
    url = service["environment"]["QA_MAILER_DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://")
    user = database["environment"]["POSTGRES_USER"]
    assert f"//{user}:" in url and url.endswith(f"@db/{database['environment']['POSTGRES_DB']}")


async def _create(name: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _count(url: str, sql: str) -> int:
    connection = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=5)
    try:
        return int(await connection.fetchval(sql))
    finally:
        await connection.close()


def _wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the service ended: {process.communicate()[0]}")
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the listener did not open")
