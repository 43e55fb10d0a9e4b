"""Browser sign-in (authorization code with PKCE, loopback redirect) against a local server.

The "browser" is an HTTP client that follows the sign-in page's redirect to qa-mailer's
loopback listener, as a real one does; the authorisation server (tests/servers/oauth.py)
checks the PKCE verifier against the challenge at the token endpoint.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa_mailer.config import OAuth2Config
from qa_mailer.diagnose import Misconfigured
from qa_mailer.oauth2 import read_grant
from qa_mailer.oauth2_browser import browser_login
from tests.helpers import QA, write_config
from tests.servers.oauth import AuthorisationServer


@pytest.fixture
def authorisation() -> Iterator[AuthorisationServer]:
    server = AuthorisationServer(signing_in=QA).start()
    yield server
    server.stop()


def grant_config(server: AuthorisationServer, folder: Path) -> OAuth2Config:
    return OAuth2Config(
        token_url=f"{server.url}/token",
        device_url=None,
        client_id=server.client_id,
        client_secret_env=None,
        scope="https://mail.google.com/",
        token_file=folder / "grant.json",
        timeout_seconds=10,
        authorize_url=f"{server.url}/authorize",
    )


def fetch(url: str) -> tuple[int, str]:
    """GET ``url`` following redirects, as a browser does; the final status and page."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).items()}


@pytest.mark.asyncio
async def test_browser_sign_in_with_pkce_stores_the_grant_0600(
    tmp_path: Path, authorisation: AuthorisationServer
) -> None:
    pages: list[tuple[int, str]] = []
    told: list[str] = []

    def browser(url: str) -> bool:
        query = query_of(url)
        redirect = query["redirect_uri"]
        assert redirect.startswith("http://127.0.0.1:") and query["code_challenge_method"] == "S256"
        # A request to the listener that is not this sign-in's (a forged link) is refused,
        # and the listener keeps waiting for the real one.
        pages.append(fetch(f"{redirect}?code=forged&state=not-the-state"))
        pages.append(fetch(url))
        return True

    await browser_login(grant_config(authorisation, tmp_path), told.append, browser)

    assert pages[0][0] == 400 and "not the sign-in" in pages[0][1]
    assert pages[1][0] == 200 and "Signed in" in pages[1][1]
    assert authorisation.code_exchanges == ["ok"]
    grant = tmp_path / "grant.json"
    assert stat.S_IMODE(grant.stat().st_mode) == 0o600
    assert authorisation.refresh_tokens[read_grant(grant)["refresh_token"]] == QA
    assert (
        told[0].startswith("Open this page to sign in")
        and f"{authorisation.url}/authorize?" in told[0]
    )
    assert "mode 0600" in told[-1]


@pytest.mark.asyncio
async def test_the_verifier_must_match_the_challenge_the_page_saw(
    tmp_path: Path, authorisation: AuthorisationServer
) -> None:
    def tampering_browser(url: str) -> bool:
        # Someone swapped the challenge on the way: the code is then worth nothing to us
        # (nor to them, without our verifier).
        query = query_of(url)
        query["code_challenge"] = "A" * 43
        fetch(f"{url.partition('?')[0]}?{urllib.parse.urlencode(query)}")
        return True

    with pytest.raises(Misconfigured, match=r"the token endpoint refused the code"):
        await browser_login(
            grant_config(authorisation, tmp_path), lambda _: None, tampering_browser
        )
    assert authorisation.code_exchanges == ["invalid_grant: PKCE verifier"]
    assert not (tmp_path / "grant.json").exists()


@pytest.mark.asyncio
async def test_a_refused_consent_is_reported_with_the_keys_to_check(
    tmp_path: Path, authorisation: AuthorisationServer
) -> None:
    def declining_browser(url: str) -> bool:
        query = query_of(url)
        # The provider sends the organiser back with an error instead of a code.
        fetch(f"{query['redirect_uri']}?error=access_denied&state={query['state']}")
        return True

    with pytest.raises(
        Misconfigured, match=r"refused the sign-in \(access_denied\).*oauth2\.client_id"
    ):
        await browser_login(
            grant_config(authorisation, tmp_path), lambda _: None, declining_browser
        )
    assert authorisation.code_exchanges == []


def test_auth_login_browser_in_a_process_with_the_systems_browser_setting(
    tmp_path: Path, authorisation: AuthorisationServer
) -> None:
    config = write_config(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        imap={"enabled": True, "host": "imap.gmail.com", "username": QA, "auth": "oauth2"},
        oauth2={
            "token_url": f"{authorisation.url}/token",
            "authorize_url": f"{authorisation.url}/authorize",
            "client_id": authorisation.client_id,
            "scope": "https://mail.google.com/",
            "token_file": str(tmp_path / "grant.json"),
        },
    )
    # Python's webbrowser runs the command in $BROWSER: here one that follows the page.
    opener = tmp_path / "browser.py"
    opener.write_text(
        "import sys, urllib.request\nurllib.request.urlopen(sys.argv[1], timeout=10).read()\n",
        encoding="utf-8",
    )
    environment = {**os.environ, "BROWSER": f"{sys.executable} {opener} %s"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "qa_mailer",
            "--config",
            str(config.path),
            "auth",
            "login",
            "--browser",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Open this page to sign in" in result.stdout
    assert authorisation.code_exchanges == ["ok"]
    grant = tmp_path / "grant.json"
    assert stat.S_IMODE(grant.stat().st_mode) == 0o600
    assert authorisation.refresh_tokens[read_grant(grant)["refresh_token"]] == QA
