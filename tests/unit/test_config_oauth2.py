"""The OAuth2 keys of config.toml: imap.auth, smtp.auth and the [oauth2] table."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_mailer.config import ConfigError
from qa_mailer.diagnose import Misconfigured
from qa_mailer.oauth2 import choose_mechanism, oauthbearer
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


def test_the_sasl_mechanism_is_a_key_with_auto_by_default(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite+aiosqlite:///x.db", imap=IMAP, oauth2=GRANT)
    assert config.imap is not None and config.imap.oauth2 is not None
    assert config.imap.oauth2.mechanism == "auto"
    chosen = write_config(
        tmp_path,
        "sqlite+aiosqlite:///x.db",
        imap=IMAP,
        oauth2={**GRANT, "mechanism": "OAUTHBEARER"},
    )
    assert chosen.imap is not None and chosen.imap.oauth2 is not None
    assert chosen.imap.oauth2.mechanism == "OAUTHBEARER"
    with pytest.raises(ConfigError, match=r"oauth2\.mechanism: expected 'auto' or 'XOAUTH2'"):
        write_config(
            tmp_path, "sqlite+aiosqlite:///x.db", imap=IMAP, oauth2={**GRANT, "mechanism": "PLAIN"}
        )


def test_auto_prefers_xoauth2_and_falls_back_to_oauthbearer() -> None:
    assert choose_mechanism("auto", {"XOAUTH2", "OAUTHBEARER", "PLAIN"}, "imap") == "XOAUTH2"
    assert choose_mechanism("auto", {"OAUTHBEARER", "PLAIN"}, "imap") == "OAUTHBEARER"
    assert choose_mechanism("OAUTHBEARER", {"XOAUTH2", "OAUTHBEARER"}, "smtp") == "OAUTHBEARER"
    with pytest.raises(Misconfigured, match=r'set oauth2\.mechanism = "XOAUTH2"'):
        choose_mechanism("OAUTHBEARER", {"XOAUTH2", "PLAIN"}, "smtp")
    with pytest.raises(Misconfigured, match=r"neither XOAUTH2 nor OAUTHBEARER: set imap\.auth"):
        choose_mechanism("auto", {"PLAIN", "LOGIN"}, "imap")


def test_the_oauthbearer_initial_response_follows_rfc_7628() -> None:
    # RFC 7628, 4.1, with the authzid's "," and "=" escaped as RFC 5801 says.
    assert oauthbearer("user@example.com", "vF9dft4qmT", "server.example.com", 143) == (
        "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
        "auth=Bearer vF9dft4qmT\x01\x01"
    )
    assert oauthbearer("a,b=c@x", "t", "h", 1).startswith("n,a=a=2Cb=3Dc@x,\x01")
