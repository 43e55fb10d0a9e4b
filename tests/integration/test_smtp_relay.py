"""Sending through a relay that insists on TLS (implicit or STARTTLS) and a login."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from qa_mailer.send.transport import DeliveryError, SmtpTransport
from tests.helpers import QA, local_relay, make_mail
from tests.servers.certs import make_certificate
from tests.servers.smtp_sink import SmtpSink

PASSWORD = "relay-secret"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == QA.encode()
        and data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@pytest_asyncio.fixture
async def secure_relays(tmp_path: Path) -> AsyncIterator[tuple[SmtpSink, int, int, Path]]:
    """One sink behind two listeners: STARTTLS (required) and implicit TLS, both with AUTH."""
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    sink, loop = SmtpSink(), asyncio.get_running_loop()

    def protocol(starttls: bool) -> SMTP:
        with warnings.catch_warnings():
            # aiosmtpd cannot see that the implicit-TLS listener's transport is TLS, and warns
            # that AUTH without STARTTLS is unsafe; here it is not.
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return SMTP(
                sink,
                loop=loop,
                tls_context=context if starttls else None,
                require_starttls=starttls,
                auth_required=True,
                auth_require_tls=starttls,
                authenticator=authenticate,
            )

    starttls = await loop.create_server(lambda: protocol(True), "127.0.0.1", 0)
    implicit = await loop.create_server(lambda: protocol(False), "127.0.0.1", 0, ssl=context)
    yield sink, starttls.sockets[0].getsockname()[1], implicit.sockets[0].getsockname()[1], cert
    for server in (starttls, implicit):
        server.close()


def relay(
    port: int, security: str, ca_file: Path | None, password_env: str = "QA_TEST_SMTP_PW"
) -> SmtpTransport:
    return SmtpTransport(
        local_relay(
            port, security=security, username=QA, password_env=password_env, ca_file=ca_file
        )
    )


@pytest.mark.asyncio
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_delivery_over_tls_with_login(
    secure_relays: tuple[SmtpSink, int, int, Path], security: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink, starttls_port, tls_port, cert = secure_relays
    monkeypatch.setenv("QA_TEST_SMTP_PW", PASSWORD)
    raw = make_mail(sender=QA, to="ana@drvo.example.hr", subject="Answer", body="Yes.")
    port = starttls_port if security == "starttls" else tls_port
    await relay(port, security, cert).send(QA, ["ana@drvo.example.hr"], raw, "mail-1")
    assert [r.rcpt_tos for r in sink.received] == [["ana@drvo.example.hr"]]


@pytest.mark.asyncio
async def test_a_wrong_password_and_an_untrusted_certificate_are_delivery_errors(
    secure_relays: tuple[SmtpSink, int, int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sink, starttls_port, _, cert = secure_relays
    raw = make_mail(sender=QA, subject="x", body="y")
    monkeypatch.setenv("QA_TEST_SMTP_PW", "wrong")
    with pytest.raises(DeliveryError) as refused:
        await relay(starttls_port, "starttls", cert).send(QA, ["a@b.example.org"], raw, "mail-1")
    assert refused.value.permanent  # 535: retrying with the same password cannot help
    monkeypatch.setenv("QA_TEST_SMTP_PW", PASSWORD)
    with pytest.raises(DeliveryError) as untrusted:
        await relay(starttls_port, "starttls", None).send(QA, ["a@b.example.org"], raw, "mail-1")
    assert not untrusted.value.permanent
    assert sink.received == []
