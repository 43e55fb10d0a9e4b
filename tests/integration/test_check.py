"""`qa-mailer check` against real servers: each wrong setting named with its fix, nothing sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.check import Verdict, check_setup
from qa_mailer.cli import main
from qa_mailer.config import Config
from qa_mailer.db import migrate
from qa_mailer.db.engine import create_engine
from tests.helpers import QA, FakeClock, wait_until, write_config
from tests.integration.test_smtp_relay import PASSWORD, secure_relays  # noqa: F401
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.smtp_sink import SmtpSink


def imap_settings(dovecot: DovecotServer, user: ImapUser, **changes: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "host": "127.0.0.1",
        "port": dovecot.port,
        "security": "none",
        "username": user.name,
        "password_env": "QA_TEST_IMAP_PASSWORD",
        # Room for a slow greeting on a loaded machine; the cases where the check must wait
        # for a greeting that never comes set SILENT_PORT_SECONDS.
        "timeout_seconds": 10,
        **changes,
    }


# A port that speaks TLS at once says nothing to a plain client: this is how long the check
# waits there before it tries a TLS handshake.
SILENT_PORT_SECONDS = 2


def relay_settings(port: int, **changes: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "username": QA,
        "password_env": "QA_TEST_SMTP_PW",
        "timeout_seconds": 10,
        **changes,
    }


async def verdicts(config: Config) -> dict[str, Verdict]:
    return {v.part: v for v in await check_setup(config, FakeClock())}


async def _async(value: int) -> int:
    return value


def failures_of(dovecot: DovecotServer, user: ImapUser) -> int:
    return sum(
        1 for line in dovecot.log().splitlines() if user.name in line and "auth failed" in line
    )


@pytest.mark.asyncio
async def test_a_good_set_up_is_ok_everywhere_and_nothing_is_sent(
    tmp_path: Path,
    engine: AsyncEngine,
    migrated_url: str,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    secure_relays: tuple[SmtpSink, int, int, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink, starttls_port, _, cert = secure_relays
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", imap_user.password)
    monkeypatch.setenv("QA_TEST_SMTP_PW", PASSWORD)
    config = write_config(
        tmp_path,
        migrated_url,
        imap=imap_settings(dovecot, imap_user),
        outgoing={"transport": "smtp"},
        smtp=relay_settings(starttls_port, ca_file=str(cert)),
    )
    found = await verdicts(config)
    assert all(v.ok for v in found.values()), [v.line() for v in found.values()]
    assert set(found) == {"config", "templates", "roster", "database", "imap", "plus", "relay"}
    assert "IDLE" in found["imap"].text and "MOVE supported" in found["imap"].text
    assert "qa+r...@clusters.example.org" in found["plus"].text
    assert "STARTTLS, login accepted" in found["relay"].text
    assert found["relay"].text.endswith("sends over 3 connection(s), no rate limit")
    assert sink.received == []


@pytest.mark.asyncio
async def test_a_wrong_imap_password_is_named_and_tried_once(
    tmp_path: Path,
    migrated_url: str,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", "not-the-password")
    config = write_config(tmp_path, migrated_url, imap=imap_settings(dovecot, imap_user))
    imap = (await verdicts(config))["imap"]
    assert not imap.ok
    assert "login refused" in imap.text and "check $QA_TEST_IMAP_PASSWORD" in imap.text
    # Dovecot logs the failure when the connection closes.
    assert await wait_until(lambda: _async(failures_of(dovecot, imap_user)), what="log") == 1


@pytest.mark.asyncio
async def test_wrong_tls_settings_and_an_untrusted_certificate_say_what_to_set(
    tmp_path: Path,
    migrated_url: str,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", imap_user.password)
    cases = {
        # STARTTLS against the port that speaks TLS at once (993 in real life).
        'speaks TLS at once: set imap.security = "tls"': {
            "port": dovecot.tls_port,
            "security": "starttls",
            "timeout_seconds": SILENT_PORT_SECONDS,
        },
        # TLS against the plain port (143).
        f'port {dovecot.port} does not speak TLS at once: set imap.security = "starttls"': {
            "security": "tls"
        },
        # A self-signed certificate, without imap.ca_file.
        "certificate not trusted (self-signed certificate): set imap.ca_file": {
            "port": dovecot.tls_port,
            "security": "tls",
        },
    }
    for n, (expected, changes) in enumerate(cases.items()):
        config = write_config(
            tmp_path / str(n), migrated_url, imap=imap_settings(dovecot, imap_user, **changes)
        )
        imap = (await verdicts(config))["imap"]
        assert not imap.ok and expected in imap.text, imap.text
    # With the certificate trusted, the same port works.
    config = write_config(
        tmp_path / "trusted",
        migrated_url,
        imap=imap_settings(
            dovecot, imap_user, port=dovecot.tls_port, security="tls", ca_file=str(dovecot.cert)
        ),
    )
    assert (await verdicts(config))["imap"].ok


@pytest.mark.asyncio
async def test_relay_mistakes_are_named(
    tmp_path: Path,
    migrated_url: str,
    smtp_sink: SmtpSink,
    secure_relays: tuple[SmtpSink, int, int, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, starttls_port, tls_port, cert = secure_relays
    monkeypatch.setenv("QA_TEST_SMTP_PW", PASSWORD)
    cases: dict[str, dict[str, Any]] = {
        # A relay that offers no STARTTLS is not "unreachable".
        f"127.0.0.1:{smtp_sink.port} does not offer STARTTLS": {"port": smtp_sink.port},
        'speaks TLS at once: set smtp.security = "tls"': {
            "port": tls_port,
            "timeout_seconds": SILENT_PORT_SECONDS,
        },
        f'port {starttls_port} does not speak TLS at once: set smtp.security = "starttls"': {
            "port": starttls_port,
            "security": "tls",
        },
        "certificate not trusted (self-signed certificate): set smtp.ca_file": {
            "port": starttls_port
        },
    }
    for n, (expected, changes) in enumerate(cases.items()):
        config = write_config(
            tmp_path / str(n),
            migrated_url,
            outgoing={"transport": "smtp"},
            smtp=relay_settings(**{"port": starttls_port, **changes}),
        )
        relay = (await verdicts(config))["relay"]
        assert not relay.ok and expected in relay.text, relay.text
    monkeypatch.setenv("QA_TEST_SMTP_PW", "wrong")
    config = write_config(
        tmp_path / "password",
        migrated_url,
        outgoing={"transport": "smtp"},
        smtp=relay_settings(starttls_port, ca_file=str(cert)),
    )
    relay = (await verdicts(config))["relay"]
    assert not relay.ok and "login refused" in relay.text and "$QA_TEST_SMTP_PW" in relay.text


@pytest.mark.asyncio
async def test_a_database_behind_and_a_broken_template_are_named(
    tmp_path: Path, empty_database: str
) -> None:
    own = tmp_path / "my-templates"
    own.mkdir()
    (own / "ack.txt").write_text("{% set subject %}Hi{% endset %}{{ nowhere.at_all }}\n")
    config = write_config(tmp_path, empty_database, service={"templates": str(own)})
    found = await verdicts(config)
    assert not found["database"].ok and "run `qa-mailer db upgrade`" in found["database"].text
    assert not found["templates"].ok and "ack.txt" in found["templates"].text
    engine = create_engine(empty_database)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    assert (await verdicts(config))["database"].ok


@pytest.mark.asyncio
async def test_headings_of_the_digest_list_that_do_not_match_its_columns_are_named(
    tmp_path: Path, empty_database: str
) -> None:
    own = tmp_path / "my-templates"
    own.mkdir()
    (own / "digest_columns.txt").write_text("Ref\nState\nSubject\n", encoding="utf-8")
    config = write_config(tmp_path, empty_database, service={"templates": str(own)})
    templates = (await verdicts(config))["templates"]
    assert not templates.ok and "digest_columns.txt" in templates.text
    assert "names 3 headings; the list has 12 columns" in templates.text


def test_the_command_prints_one_line_each_and_fails_on_a_mistake(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    monkeypatch.setenv("QA_TEST_IMAP_PASSWORD", imap_user.password)
    config = write_config(tmp_path, url, imap=imap_settings(dovecot, imap_user))
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(config.path), "check"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("FAIL  database") for line in lines), result.output
    assert any(line.startswith("OK    imap") for line in lines), result.output
    assert runner.invoke(main, ["--config", str(config.path), "db", "upgrade"]).exit_code == 0
    result = runner.invoke(main, ["--config", str(config.path), "check"])
    assert result.exit_code == 0, result.output
