"""OAuth2 (XOAUTH2) for the mailbox and the relay, against Dovecot's oauth2 passdb and an
aiosmtpd relay, both checking tokens at a local authorisation server (tests/servers/oauth.py).
"""

from __future__ import annotations

import asyncio
import stat
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.app import Service
from qa_mailer.check import check_setup
from qa_mailer.cli import main
from qa_mailer.clock import SystemClock
from qa_mailer.config import Mechanism, OAuth2Config, SmtpRelayConfig
from qa_mailer.db import OutboxMail
from qa_mailer.db.engine import session_factory
from qa_mailer.diagnose import SetupError
from qa_mailer.ingest.imap import ImapPoller
from qa_mailer.ingest.store import MessageStore
from qa_mailer.oauth2 import TokenSource, read_grant, write_grant
from qa_mailer.send.transport import DeliveryError, SmtpTransport
from tests.helpers import (
    ORGANISER,
    QA,
    FakeClock,
    local_relay,
    make_mail,
    registered,
    wait_until,
    write_config,
)
from tests.integration.test_imap_poller import polling, stored
from tests.servers.dovecot import DovecotServer, ImapUser, imap_config_for
from tests.servers.imap_client import append
from tests.servers.oauth import AuthorisationServer, OAuthBearerRelay, XOAuth2Relay
from tests.servers.smtp_sink import SmtpSink

R = TypeVar("R", bound=SmtpSink)

# Every test here runs against Dovecot (its own instance, with the oauth2 passdb).
pytestmark = pytest.mark.dovecot


@pytest.fixture(scope="module")
def authorisation() -> Iterator[AuthorisationServer]:
    server = AuthorisationServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oauth_dovecot(authorisation: AuthorisationServer) -> Iterator[DovecotServer]:
    server = DovecotServer.start_new(introspection_url=f"{authorisation.url}/introspect")
    yield server
    server.stop()


def oauth2_settings(server: AuthorisationServer, folder: Path) -> dict[str, Any]:
    return {
        "token_url": f"{server.url}/token",
        "device_url": f"{server.url}/device",
        "client_id": server.client_id,
        "scope": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
        "token_file": str(folder / "grant.json"),
    }


def oauth_imap(dovecot: DovecotServer, username: str, **extra: Any) -> dict[str, Any]:
    """[imap] settings for logging in to the test Dovecot with the grant."""
    return {
        "enabled": True,
        "host": "127.0.0.1",
        "port": dovecot.port,
        "security": "none",
        "username": username,
        "auth": "oauth2",
        **extra,
    }


def oauth_smtp(port: int, username: str) -> dict[str, Any]:
    """[smtp] settings for logging in to a local relay with the grant."""
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": username,
        "auth": "oauth2",
    }


def grant_config(
    server: AuthorisationServer, folder: Path, mechanism: Mechanism = "auto"
) -> OAuth2Config:
    return OAuth2Config(
        token_url=f"{server.url}/token",
        device_url=f"{server.url}/device",
        client_id=server.client_id,
        client_secret_env=None,
        scope="",
        token_file=folder / "grant.json",
        timeout_seconds=10,
        mechanism=mechanism,
    )


def test_auth_login_runs_the_device_code_flow_and_stores_the_grant_0600(
    tmp_path: Path, authorisation: AuthorisationServer
) -> None:
    config = write_config(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        imap={
            "enabled": True,
            "host": "imap.example.org",
            "username": QA,
            "auth": "oauth2",
        },
        oauth2=oauth2_settings(authorisation, tmp_path),
    )
    before = set(authorisation.devices)

    def consent() -> None:
        # The organiser opens the page and enters the code while the command waits.
        while not set(authorisation.devices) - before:
            pass
        (code,) = set(authorisation.devices) - before
        authorisation.approve(authorisation.devices[code]["user_code"], QA)

    async def both() -> Any:
        helper = asyncio.create_task(asyncio.to_thread(consent))
        result = await asyncio.to_thread(
            CliRunner().invoke, main, ["--config", str(config.path), "auth", "login"]
        )
        await helper
        return result

    result = asyncio.run(both())
    assert result.exit_code == 0, result.output
    assert f"Open {authorisation.url}/activate and enter the code" in result.output
    grant = tmp_path / "grant.json"
    assert stat.S_IMODE(grant.stat().st_mode) == 0o600
    assert authorisation.refresh_tokens[read_grant(grant)["refresh_token"]] == QA


@pytest.mark.asyncio
async def test_the_poller_logs_in_with_xoauth2_and_stores_mail(
    tmp_path: Path,
    engine: AsyncEngine,
    oauth_dovecot: DovecotServer,
    authorisation: AuthorisationServer,
) -> None:
    user = oauth_dovecot.add_user()
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant(user.name)})
    config = replace(
        imap_config_for(oauth_dovecot, user, password_env="QA_TEST_NOT_SET"),
        oauth2=grant_config(authorisation, tmp_path),
    )
    introspections = authorisation.introspections
    await append(oauth_dovecot, user, make_mail(sender="ana@drvo.example.hr", subject="Q"))
    async with polling(engine, config):
        await wait_until(lambda: stored(engine), what="the mail stored over XOAUTH2")
    assert authorisation.introspections > introspections
    await oauth_dovecot.logged("method=XOAUTH2", user.name)


@pytest.mark.asyncio
async def test_a_revoked_grant_stops_the_poller_with_the_command_to_run(
    tmp_path: Path,
    engine: AsyncEngine,
    oauth_dovecot: DovecotServer,
    authorisation: AuthorisationServer,
) -> None:
    user = oauth_dovecot.add_user()
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant(user.name)})
    authorisation.revoke(user.name)
    config = replace(
        imap_config_for(oauth_dovecot, user, password_env="QA_TEST_NOT_SET"),
        oauth2=grant_config(authorisation, tmp_path),
    )
    sessions = session_factory(engine)
    workers = await registered(sessions, SystemClock())
    poller = ImapPoller(
        config, MessageStore(sessions, SystemClock(), lambda: None), sessions, workers
    )
    # It stops by itself, after three tries (about 3 s of backoff), without being told to.
    with pytest.raises(SetupError) as stopped:
        await asyncio.wait_for(poller.run(asyncio.Event()), 60)
    assert "refused the OAuth2 grant (invalid_grant" in str(stopped.value)
    assert "run `qa-mailer auth login` again" in str(stopped.value)


@pytest.mark.asyncio
async def test_access_tokens_are_renewed_before_they_expire_and_rotated_grants_kept(
    tmp_path: Path, authorisation: AuthorisationServer
) -> None:
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant(QA)})
    clock = FakeClock()
    tokens = TokenSource(grant_config(authorisation, tmp_path), now=lambda: clock.now().timestamp())
    refreshes = authorisation.refreshes
    first = await tokens.access_token()
    clock.advance(seconds=3000)
    assert await tokens.access_token() == first
    assert authorisation.refreshes == refreshes + 1
    # A minute before it expires (3600 s), a new one.
    clock.advance(seconds=541)
    authorisation.rotate_refresh_tokens = True
    try:
        second = await tokens.access_token()
    finally:
        authorisation.rotate_refresh_tokens = False
    assert second != first and authorisation.refreshes == refreshes + 2
    grant = tmp_path / "grant.json"
    assert authorisation.refresh_tokens[read_grant(grant)["refresh_token"]] == QA
    assert stat.S_IMODE(grant.stat().st_mode) == 0o600


class OAuthRelay(SmtpSink, XOAuth2Relay):
    def __init__(self, server: AuthorisationServer):
        SmtpSink.__init__(self)
        XOAuth2Relay.__init__(self, server)


class BearerOnlyRelay(SmtpSink, OAuthBearerRelay):
    """A relay that offers OAUTHBEARER and not XOAUTH2."""

    def __init__(self, server: AuthorisationServer):
        SmtpSink.__init__(self)
        OAuthBearerRelay.__init__(self, server)


@pytest_asyncio.fixture
async def oauth_relay(authorisation: AuthorisationServer) -> AsyncIterator[OAuthRelay]:
    async for relay in serving(OAuthRelay(authorisation)):
        yield relay


@pytest_asyncio.fixture
async def bearer_relay(authorisation: AuthorisationServer) -> AsyncIterator[BearerOnlyRelay]:
    async for relay in serving(BearerOnlyRelay(authorisation)):
        yield relay


async def serving(relay: R) -> AsyncIterator[R]:
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        with warnings.catch_warnings():
            # Loopback, no TLS: aiosmtpd warns that AUTH without TLS is unsafe; here it is not.
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return SMTP(relay, loop=loop, auth_required=True, auth_require_tls=False)

    relay.server = await loop.create_server(protocol, "127.0.0.1", 0)
    relay.port = int(relay.server.sockets[0].getsockname()[1])
    yield relay
    relay.server.close()
    await relay.server.wait_closed()


@pytest.mark.asyncio
async def test_the_relay_takes_mail_with_xoauth2(
    tmp_path: Path, oauth_relay: OAuthRelay, authorisation: AuthorisationServer
) -> None:
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant(QA)})
    transport = SmtpTransport(relay_config(oauth_relay.port, grant_config(authorisation, tmp_path)))
    raw = make_mail(sender=QA, to="ana@drvo.example.hr", subject="Answer", body="Yes.")
    assert await transport.send(QA, ["ana@drvo.example.hr"], raw, "mail-1") == {}
    assert oauth_relay.accounts == [QA]
    assert [r.rcpt_tos for r in oauth_relay.received] == [["ana@drvo.example.hr"]]


@pytest.mark.asyncio
async def test_check_logs_in_to_both_with_the_grant(
    tmp_path: Path,
    migrated_url: str,
    oauth_dovecot: DovecotServer,
    oauth_relay: OAuthRelay,
    authorisation: AuthorisationServer,
) -> None:
    user: ImapUser = oauth_dovecot.add_user()
    # One grant for both, as with a Microsoft 365 or Google account.
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant(user.name)})
    config = write_config(
        tmp_path,
        migrated_url,
        imap=oauth_imap(oauth_dovecot, user.name),
        outgoing={"transport": "smtp"},
        smtp=oauth_smtp(oauth_relay.port, user.name),
        oauth2=oauth2_settings(authorisation, tmp_path),
    )
    verdicts = {v.part: v for v in await check_setup(config, FakeClock())}
    assert verdicts["imap"].ok and verdicts["relay"].ok, [v.line() for v in verdicts.values()]
    assert oauth_relay.accounts == [user.name]


@pytest.mark.asyncio
async def test_a_token_the_server_refuses_is_a_refused_login_not_a_hang(
    tmp_path: Path,
    migrated_url: str,
    oauth_dovecot: DovecotServer,
    authorisation: AuthorisationServer,
) -> None:
    user = oauth_dovecot.add_user()
    # A good token, but for another account: Dovecot answers the XOAUTH2 with an error
    # challenge first, which aioimaplib alone would wait on until its timeout.
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant("someone-else")})
    config = write_config(
        tmp_path,
        migrated_url,
        imap=oauth_imap(oauth_dovecot, user.name, timeout_seconds=20),
        oauth2=oauth2_settings(authorisation, tmp_path),
    )
    imap = {v.part: v for v in await check_setup(config, FakeClock())}["imap"]
    assert not imap.ok and "login refused" in imap.text, imap.text
    assert "run `qa-mailer auth login`" in imap.text


@pytest.mark.asyncio
async def test_a_revoked_grant_is_mailed_to_the_organisers_once(
    tmp_path: Path,
    migrated_url: str,
    engine: AsyncEngine,
    oauth_dovecot: DovecotServer,
    authorisation: AuthorisationServer,
    smtp_sink: SmtpSink,
) -> None:
    user = oauth_dovecot.add_user()
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant(user.name)})
    config = write_config(
        tmp_path,
        migrated_url,
        imap=oauth_imap(oauth_dovecot, user.name),
        listener={"enabled": False},
        # The relay takes mail without the grant (as a local relay would): it can tell them.
        outgoing={"transport": "smtp"},
        smtp={"host": "127.0.0.1", "port": smtp_sink.port, "security": "none"},
        oauth2=oauth2_settings(authorisation, tmp_path),
    )
    # Revoked after the service was set up: the token endpoint answers invalid_grant.
    authorisation.revoke(user.name)
    for _ in range(2):  # and once more after a restart
        service = Service(config, engine, clock=SystemClock())
        with pytest.raises(SetupError) as stopped:
            await asyncio.wait_for(service.run(asyncio.Event(), grace_seconds=5), 90)
        assert "refused the OAuth2 grant (invalid_grant" in str(stopped.value)
    told = [r for r in smtp_sink.received if "has stopped" in r.message["Subject"]]
    assert len(told) == 1, [r.message["Subject"] for r in smtp_sink.received]
    assert told[0].rcpt_tos == [ORGANISER]
    assert "qa-mailer auth login" in told[0].text()
    assert "invalid_grant" in told[0].text()


def relay_config(port: int, grant: OAuth2Config) -> SmtpRelayConfig:
    return local_relay(port, username=QA, oauth2=grant)


@pytest.mark.asyncio
async def test_the_poller_logs_in_with_oauthbearer_when_the_config_says_so(
    tmp_path: Path,
    engine: AsyncEngine,
    oauth_dovecot: DovecotServer,
    authorisation: AuthorisationServer,
) -> None:
    user = oauth_dovecot.add_user()
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant(user.name)})
    config = replace(
        imap_config_for(oauth_dovecot, user, password_env="QA_TEST_NOT_SET"),
        oauth2=grant_config(authorisation, tmp_path, "OAUTHBEARER"),
    )
    await append(oauth_dovecot, user, make_mail(sender="ana@drvo.example.hr", subject="Q"))
    async with polling(engine, config):
        await wait_until(lambda: stored(engine), what="the mail stored over OAUTHBEARER")
    await oauth_dovecot.logged("method=OAUTHBEARER", user.name)
    logins = [line for line in oauth_dovecot.log().splitlines() if user.name in line]
    assert not any("method=XOAUTH2" in line for line in logins), logins


@pytest.mark.asyncio
async def test_a_refused_oauthbearer_token_is_a_refused_login_not_a_hang(
    tmp_path: Path,
    migrated_url: str,
    oauth_dovecot: DovecotServer,
    authorisation: AuthorisationServer,
) -> None:
    user = oauth_dovecot.add_user()
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant("someone-else")})
    config = write_config(
        tmp_path,
        migrated_url,
        imap=oauth_imap(oauth_dovecot, user.name, timeout_seconds=20),
        oauth2={**oauth2_settings(authorisation, tmp_path), "mechanism": "OAUTHBEARER"},
    )
    imap = {v.part: v for v in await check_setup(config, FakeClock())}["imap"]
    assert not imap.ok and "login refused" in imap.text, imap.text


@pytest.mark.asyncio
async def test_the_relay_takes_mail_with_oauthbearer_chosen_or_as_the_only_one_offered(
    tmp_path: Path,
    oauth_relay: OAuthRelay,
    bearer_relay: BearerOnlyRelay,
    authorisation: AuthorisationServer,
) -> None:
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant(QA)})
    raw = make_mail(sender=QA, to="ana@drvo.example.hr", subject="Answer", body="Yes.")
    # Both offered, OAUTHBEARER asked for.
    chosen = SmtpTransport(
        relay_config(oauth_relay.port, grant_config(authorisation, tmp_path, "OAUTHBEARER"))
    )
    assert await chosen.send(QA, ["ana@drvo.example.hr"], raw, "mail-1") == {}
    # Both offered, "auto": XOAUTH2, which Microsoft's and Google's servers both take.
    auto = SmtpTransport(relay_config(oauth_relay.port, grant_config(authorisation, tmp_path)))
    assert await auto.send(QA, ["ana@drvo.example.hr"], raw, "mail-2") == {}
    assert oauth_relay.mechanisms == ["OAUTHBEARER", "XOAUTH2"]
    assert len(oauth_relay.received) == 2
    # Only OAUTHBEARER offered, "auto": OAUTHBEARER.
    only = SmtpTransport(relay_config(bearer_relay.port, grant_config(authorisation, tmp_path)))
    assert await only.send(QA, ["ana@drvo.example.hr"], raw, "mail-3") == {}
    assert bearer_relay.mechanisms == ["OAUTHBEARER"] and bearer_relay.accounts == [QA]
    assert len(bearer_relay.received) == 1
    # XOAUTH2 asked for where it is not offered: the key to change, nothing sent.
    wrong = SmtpTransport(
        relay_config(bearer_relay.port, grant_config(authorisation, tmp_path, "XOAUTH2"))
    )
    with pytest.raises(DeliveryError) as refused:
        await wrong.send(QA, ["ana@drvo.example.hr"], raw, "mail-4")
    assert 'set oauth2.mechanism = "OAUTHBEARER"' in str(refused.value)
    assert len(bearer_relay.received) == 1


@pytest.mark.asyncio
async def test_a_refused_oauthbearer_token_at_the_relay_ends_with_the_dummy_reply(
    tmp_path: Path, bearer_relay: BearerOnlyRelay, authorisation: AuthorisationServer
) -> None:
    # A good token for another account: the relay answers with the RFC 7628 error challenge.
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant("someone-else")})
    transport = SmtpTransport(
        relay_config(bearer_relay.port, grant_config(authorisation, tmp_path))
    )
    raw = make_mail(sender=QA, to="ana@drvo.example.hr", subject="Answer", body="Yes.")
    with pytest.raises(DeliveryError) as refused:
        await asyncio.wait_for(transport.send(QA, ["ana@drvo.example.hr"], raw, "mail-1"), 30)
    assert "login refused" in str(refused.value)
    assert bearer_relay.dummy_replies == [b"\x01"]  # decoded from "AQ=="
    assert bearer_relay.received == []


@pytest.mark.asyncio
async def test_a_relay_on_a_revoked_grant_says_no_mail_can_leave_and_queues_nothing(
    tmp_path: Path,
    migrated_url: str,
    engine: AsyncEngine,
    oauth_dovecot: DovecotServer,
    oauth_relay: OAuthRelay,
    authorisation: AuthorisationServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    user = oauth_dovecot.add_user()
    write_grant(tmp_path / "grant.json", {"refresh_token": authorisation.grant(user.name)})
    # One grant for the mailbox and the relay, as with Microsoft 365 or Google.
    config = write_config(
        tmp_path,
        migrated_url,
        imap=oauth_imap(oauth_dovecot, user.name),
        listener={"enabled": False},
        outgoing={"transport": "smtp"},
        smtp=oauth_smtp(oauth_relay.port, user.name),
        oauth2=oauth2_settings(authorisation, tmp_path),
    )
    transport = SmtpTransport(config.smtp) if config.smtp else None
    assert transport is not None
    authorisation.revoke(user.name)
    # Mid-run: a delivery on the refused grant is a failure with the command to run, not an
    # unexpected error in the outbox pass.
    raw = make_mail(sender=QA, to="ana@drvo.example.hr", subject="Answer", body="Yes.")
    with pytest.raises(DeliveryError) as failed:
        await transport.send(QA, ["ana@drvo.example.hr"], raw, "mail-1")
    assert "run `qa-mailer auth login` again" in str(failed.value) and not failed.value.permanent
    # At start: the service stops on the relay, says nobody can be told by mail, queues nothing.
    service = Service(config, engine, clock=SystemClock())
    with pytest.raises(SetupError, match="refused the OAuth2 grant"):
        await asyncio.wait_for(service.run(asyncio.Event()), 60)
    assert "no mail can leave, nor tell the organisers" in caplog.text
    async with session_factory(engine)() as db:
        assert list(await db.scalars(select(OutboxMail.key))) == []
    assert oauth_relay.received == []
