"""The OAuth2 keys of config.toml: imap.auth, smtp.auth and the [oauth2] table."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_mailer.config import ConfigError
from tests.helpers import QA, write_config

IMAP = {"enabled": True, "host": "outlook.office365.com", "username": QA, "auth": "oauth2"}
GRANT = {
    "token_url": "https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
    "device_url": "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode",
    "client_id": "00000000-0000-0000-0000-000000000000",
    "scope": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
}


def test_oauth2_for_the_mailbox_and_the_relay(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        "sqlite+aiosqlite:///x.db",
        imap=IMAP,
        outgoing={"transport": "smtp"},
        smtp={"host": "smtp.office365.com", "username": QA, "auth": "oauth2"},
        oauth2=GRANT,
    )
    assert config.imap is not None and config.smtp is not None
    assert config.imap.oauth2 is not None and config.imap.oauth2 == config.smtp.oauth2
    assert config.imap.oauth2.token_file == tmp_path / "var" / "oauth2-token.json"
    # No password is needed, or asked for.
    assert config.smtp.password() is None


def test_oauth2_without_its_table_or_account_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r'oauth2: expected an \[oauth2\] table because imap.auth = "oauth2"'
    ):
        write_config(tmp_path, "sqlite+aiosqlite:///x.db", imap=IMAP)
    with pytest.raises(ConfigError, match=r"smtp\.username: expected the account"):
        write_config(
            tmp_path,
            "sqlite+aiosqlite:///x.db",
            smtp={"host": "smtp.office365.com", "auth": "oauth2"},
            oauth2=GRANT,
        )
    with pytest.raises(ConfigError, match=r"oauth2\.client_id"):
        write_config(
            tmp_path,
            "sqlite+aiosqlite:///x.db",
            imap=IMAP,
            oauth2={k: v for k, v in GRANT.items() if k != "client_id"},
        )
