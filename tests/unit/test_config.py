"""config.toml: the shipped file works, and every mistake is named by file and key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from qa_mailer.classify.roster import load_roster
from qa_mailer.config import ConfigError, load_config
from tests.helpers import ROOT, write_config


def test_shipped_config_describes_the_seed_programme() -> None:
    config = load_config(ROOT / "config.toml")
    assert [s.code for s in config.sessions] == ["VC1", "VC2", "VC3", "VC4", "VC5"]
    assert "Legno Arredo Brianza" in config.session(4).title
    assert [c.code for c in config.countries] == ["BG", "HR", "RS", "TR", "RU"]
    assert config.session(1).start.utcoffset() is not None
    assert config.database_url == f"sqlite+aiosqlite:///{ROOT / 'var' / 'qa-mailer.db'}"
    assert (
        config.outgoing.transport == "maildir"
        and config.outgoing.maildir == ROOT / "var" / "outbox"
    )
    assert config.imap is None
    assert (config.answers.token_valid_days, config.answers.unknown_token_limit_per_hour) == (28, 5)
    assert len(load_roster(config.roster, config.countries)) == 5


def test_local_session_times_take_the_service_time_zone(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        "sqlite+aiosqlite:///x.db",
        sessions=[
            {
                "number": 1,
                "title": "T",
                "start": "2026-12-03T14:00:00",
                "end": "2026-12-03T16:00:00",
            }
        ],
    )
    # Sofia is UTC+2 in December.
    assert config.session(1).start == datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_relative_sqlite_path_is_relative_to_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "conf", "sqlite+aiosqlite:///data/q.db")
    assert config.database_url == f"sqlite+aiosqlite:///{tmp_path / 'conf' / 'data' / 'q.db'}"


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"service": {"address": "not-an-address"}}, "service.address: expected an e-mail address"),
        ({"service": {"timezone": "Mars/Olympus"}}, "service.timezone: expected an IANA time zone"),
        ({"listener": {"port": "8025"}}, "listener.port: expected an integer"),
        ({"listener": {"port": 70000}}, "listener.port: expected an integer between 1 and 65535"),
        ({"listener": {"protocol": "http"}}, "listener.protocol: expected 'smtp' or 'lmtp'"),
        ({"listener": {"enabld": True}}, "listener.enabld: expected a known key"),
        ({"outgoing": {"transport": "smtp"}}, "smtp: expected an [smtp] table"),
        (
            {"imap": {"enabled": True, "host": "imap.example.org"}},
            "imap.username: expected a string, got nothing",
        ),
        (
            {"imap": {"enabled": True, "host": "h", "username": "u", "idle_renew_seconds": 1800}},
            "imap.idle_renew_seconds: expected fewer than 1740 seconds",
        ),
        (
            {"imap": {"enabled": True, "host": "h", "username": "u", "fetch_batch_bytes": 1000}},
            "imap.fetch_batch_bytes: expected an integer >= 65536",
        ),
        (
            {"programme": {"organisers": ["boss"]}},
            "programme.organisers[0]: expected an e-mail address",
        ),
        ({"expert_check": {"require_authentication": True}}, "expert_check.trusted_authserv_ids"),
        ({"answers": {"token_valid_days": -1}}, "answers.token_valid_days: expected a number >= 0"),
        (
            {"answers": {"unknown_token_limit_per_hour": "5"}},
            "answers.unknown_token_limit_per_hour: expected an integer",
        ),
        ({"sessions": []}, "sessions: expected at least one [[sessions]] table"),
        (
            {
                "sessions": [
                    {
                        "number": 1,
                        "title": "T",
                        "start": "2026-12-03T16:00:00",
                        "end": "2026-12-03T14:00:00",
                    }
                ]
            },
            "sessions[0].end: expected a time after start",
        ),
        (
            {
                "sessions": [
                    {"number": 1, "title": "T", "start": "tomorrow", "end": "2026-12-03T14:00:00"}
                ]
            },
            "sessions[0].start: expected a date-time",
        ),
        (
            {"countries": [{"code": "BG"}, {"code": "BG"}]},
            "countries[1].code: expected a code not used by another country",
        ),
        ({"database": {"url": "sqlite:///plain.db"}}, "database.url: expected a SQLite URL"),
        ({"bogus": {"x": 1}}, "bogus: expected a known key"),
        (
            {"smtp": {"host": "relay.example.org", "connections": 0}},
            "smtp.connections: expected an integer between 1 and 50, got 0",
        ),
        (
            {"smtp": {"host": "relay.example.org", "max_per_second": -1}},
            "smtp.max_per_second: expected a number >= 0, got -1",
        ),
        (
            {"smtp": {"host": "relay.example.org", "max_per_second": "fast"}},
            "smtp.max_per_second: expected a number >= 0, got 'fast'",
        ),
        (
            {"authentication": {"dns_servers": ["127.0.0.1:99999"]}},
            'authentication.dns_servers: expected a list of "host" or "host:port" strings',
        ),
    ],
)
def test_a_bad_value_names_its_key(
    tmp_path: Path, sections: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        write_config(tmp_path, "sqlite+aiosqlite:///x.db", **sections)
    assert str(tmp_path / "config.toml") in str(error.value)
    assert message in str(error.value)


def test_a_session_without_any_expert_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sessions\[0\]\.experts: expected at least one expert"):
        write_config(tmp_path, "sqlite+aiosqlite:///x.db", programme={"experts": []})


def test_missing_and_broken_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[service\naddress = 1\n")
    with pytest.raises(ConfigError, match=f"{broken}: not valid TOML"):
        load_config(broken)


def test_passwords_come_from_the_environment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(
        tmp_path,
        "sqlite+aiosqlite:///x.db",
        imap={"enabled": True, "host": "h", "username": "u", "password_env": "QA_TEST_PW"},
    )
    assert config.imap is not None
    monkeypatch.delenv("QA_TEST_PW", raising=False)
    with pytest.raises(
        ConfigError, match=r"imap\.password_env: environment variable QA_TEST_PW is not set"
    ):
        config.imap.password()
    monkeypatch.setenv("QA_TEST_PW", "s3cret")
    assert config.imap.password() == "s3cret"


def test_database_url_env_wins_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_TEST_DB", "postgresql+asyncpg://u@h/db")
    config = write_config(tmp_path, "sqlite+aiosqlite:///x.db", database={"url_env": "QA_TEST_DB"})
    assert config.database_url == "postgresql+asyncpg://u@h/db"


def test_database_url_env_is_qa_mailer_database_url_unless_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The name the systemd unit's secrets file and the compose file use.
    monkeypatch.setenv("QA_MAILER_DATABASE_URL", "postgresql+asyncpg://qa@db/qa")
    config = write_config(tmp_path, "sqlite+aiosqlite:///x.db")
    assert config.database_url == "postgresql+asyncpg://qa@db/qa"
    off = write_config(tmp_path, "sqlite+aiosqlite:///x.db", database={"url_env": ""})
    assert off.database_url == f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"


@pytest.mark.parametrize(
    ("roster", "message"),
    [
        ("name,country\nA,BG\n", "the roster has no email column"),
        ("email,country\nnot-an-address,BG\n", "roster.csv:2: email: expected an e-mail address"),
        (
            "email,country\na@b.example.bg,XX\n",
            "roster.csv:2: country: expected one of BG, HR, RS, TR, RU",
        ),
    ],
)
def test_roster_errors_name_file_and_line(tmp_path: Path, roster: str, message: str) -> None:
    config = write_config(tmp_path, "sqlite+aiosqlite:///x.db")
    assert config.roster is not None
    config.roster.write_text(roster)
    with pytest.raises(ConfigError, match=message):
        load_roster(config.roster, config.countries)


def test_roster_accepts_country_names_and_any_case_addresses(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite+aiosqlite:///x.db")
    roster = load_roster(config.roster, config.countries)
    olga = roster.get("OLGA@Mebel.Example.RU")
    assert olga is not None and olga.country == "RU" and olga.city == "Kazan"


def test_the_listener_checks_authentication_through_the_configured_dns(tmp_path: Path) -> None:
    shipped = load_config(ROOT / "config.toml")
    assert shipped.authentication.verify is True
    assert shipped.authentication.authserv_id == shipped.address.domain
    assert shipped.authentication.dns_servers == ()
    assert shipped.expert_check.min_reply_seconds == 60
    config = write_config(
        tmp_path,
        "sqlite+aiosqlite:///x.db",
        authentication={"verify": True, "dns_servers": ["127.0.0.1:5353", "[::1]", "10.0.0.1"]},
        # The listener's own verdict is enough to require authentication.
        expert_check={"require_authentication": True},
    )
    assert config.authentication.dns_servers == (("127.0.0.1", 5353), ("::1", 53), ("10.0.0.1", 53))
    assert config.expert_check.require_authentication is True
