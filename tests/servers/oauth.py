"""A small OAuth2 authorisation server for the tests: a real HTTP server on a free port.

It plays the provider (Microsoft's or Google's login service): the device-code endpoint
(RFC 8628), the token endpoint (refresh-token and device-code grants, RFC 6749) and a
token-introspection endpoint (RFC 7662) that Dovecot's oauth2 passdb asks whether an access
token is good. It runs in a thread, since Dovecot's auth process calls it whatever the test's
event loop is doing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from aiosmtpd.smtp import SMTP, AuthResult


@dataclass
class AuthorisationServer:
    """Grants, tokens and counters; ``url`` once started."""

    client_id: str = "qa-mailer-test"
    access_lifetime: float = 3600
    rotate_refresh_tokens: bool = False
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> account
    access_tokens: dict[str, str] = field(default_factory=dict)  # token -> account
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Browser sign-in (authorization code with PKCE): who signs in, and the codes handed out.
    signing_in: str = ""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    code_exchanges: list[str] = field(default_factory=list)  # "ok" or the error, per exchange
    refreshes: int = 0
    introspections: int = 0
    url: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> AuthorisationServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, answer = owner.answer(self.path, form)
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                # The authorization endpoint: the organiser "signs in" at once as
                # ``signing_in`` and is sent back to the redirect URI with a code.
                split = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(split.query).items()}
                status, location = owner.authorize(split.path, query)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def grant(self, account: str) -> str:
        """A refresh token for ``account``, as after a consent."""
        token = f"refresh-{uuid.uuid4().hex}"
        self.refresh_tokens[token] = account
        return token

    def revoke(self, account: str) -> None:
        """The account's grant and tokens revoked (a changed password, an admin's click)."""
        for tokens in (self.refresh_tokens, self.access_tokens):
            for token in [t for t, a in tokens.items() if a == account]:
                del tokens[token]

    def approve(self, user_code: str, account: str) -> None:
        """The organiser entered the code and consented."""
        for device in self.devices.values():
            if device["user_code"] == user_code:
                device["account"] = account

    def authorize(self, path: str, query: dict[str, str]) -> tuple[int, str]:
        """The authorization endpoint: a redirect back with a code, or a 400."""
        redirect = query.get("redirect_uri", "")
        if path != "/authorize" or query.get("client_id") != self.client_id:
            return 400, ""
        # Installed apps get loopback redirects only, on any port (RFC 8252, 7.3).
        if not redirect.startswith("http://127.0.0.1:"):
            return 400, ""
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return (
                302,
                f"{redirect}?{urlencode({'error': 'invalid_request', 'state': query.get('state', '')})}",
            )
        code = uuid.uuid4().hex
        self.codes[code] = {
            "account": self.signing_in,
            "challenge": query["code_challenge"],
            "redirect_uri": redirect,
        }
        return 302, f"{redirect}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def _exchange_code(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        issued = self.codes.pop(form.get("code", ""), None)  # a code is good once
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if issued is None:
            error = "invalid_grant"
        elif form.get("redirect_uri") != issued["redirect_uri"]:
            error = "invalid_grant: redirect_uri"
        elif challenge != issued["challenge"]:
            error = "invalid_grant: PKCE verifier"
        else:
            self.code_exchanges.append("ok")
            return 200, self._tokens(issued["account"], None)
        self.code_exchanges.append(error)
        return 400, {"error": "invalid_grant", "error_description": error}

    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path == "/introspect":
            self.introspections += 1
            account = self.access_tokens.get(form.get("token", ""))
            return 200, {"active": True, "username": account} if account else {"active": False}
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        if path == "/device":
            code = uuid.uuid4().hex
            user_code = code[:8].upper()
            self.devices[code] = {"user_code": user_code, "account": None}
            return 200, {
                "device_code": code,
                "user_code": user_code,
                "verification_uri": f"{self.url}/activate",
                "expires_in": 600,
                "interval": 1,
            }
        if path != "/token":
            return 404, {"error": "not_found"}
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
            device = self.devices.get(form.get("device_code", ""))
            if device is None:
                return 400, {"error": "expired_token"}
            if device["account"] is None:
                return 400, {"error": "authorization_pending"}
            return 200, self._tokens(device["account"], None)
        if form.get("grant_type") == "authorization_code":
            return self._exchange_code(form)
        if form.get("grant_type") == "refresh_token":
            refresh = form.get("refresh_token", "")
            account = self.refresh_tokens.get(refresh)
            if account is None:
                return 400, {"error": "invalid_grant", "error_description": "grant revoked"}
            self.refreshes += 1
            return 200, self._tokens(account, refresh)
        return 400, {"error": "unsupported_grant_type"}

    def _tokens(self, account: str, refresh: str | None) -> dict[str, Any]:
        access = f"access-{uuid.uuid4().hex}"
        self.access_tokens[access] = account
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_lifetime,
        }
        if refresh is None or self.rotate_refresh_tokens:
            if refresh is not None:
                del self.refresh_tokens[refresh]
            answer["refresh_token"] = self.grant(account)
        return answer


class OAuthBearerRelay:
    """An aiosmtpd handler hook: AUTH OAUTHBEARER (RFC 7628), the token checked at the server.

    A refused token gets the RFC's error challenge (base64 JSON); the client must answer it
    with a single %x01 before the final 535, which ``dummy_replies`` records.
    """

    def __init__(self, authorisation: AuthorisationServer):
        self.authorisation = authorisation
        self.accounts: list[str] = []
        self.mechanisms: list[str] = []
        self.dummy_replies: list[bytes] = []

    async def auth_OAUTHBEARER(self, smtp: SMTP, args: list[str]) -> AuthResult:
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        text = base64.b64decode(args[1]).decode()
        header, _, rest = text.partition("\x01")
        # "n,a=user,": the GS2 header with the authorisation identity, "=2C" for ",".
        authzid = next((p[2:] for p in header.split(",") if p.startswith("a=")), "")
        user = authzid.replace("=2C", ",").replace("=3D", "=")
        fields = dict(part.split("=", 1) for part in rest.split("\x01") if "=" in part)
        token = fields.get("auth", "").removeprefix("Bearer ")
        account = self.authorisation.access_tokens.get(token)
        self.mechanisms.append("OAUTHBEARER")
        if account is not None and account == user and "host" in fields and "port" in fields:
            self.accounts.append(user)
            return AuthResult(success=True, handled=False)
        error = json.dumps({"status": "invalid_token", "scope": "", "openid-configuration": ""})
        reply = await smtp.challenge_auth(error)
        if isinstance(reply, bytes):
            self.dummy_replies.append(reply)
        return AuthResult(success=False, handled=False)


class XOAuth2Relay(OAuthBearerRelay):
    """An aiosmtpd handler hook: AUTH XOAUTH2 (and OAUTHBEARER), the token checked at the server."""

    async def auth_XOAUTH2(self, smtp: SMTP, args: list[str]) -> AuthResult:
        if len(args) < 2:
            return AuthResult(success=False, handled=False)
        fields = dict(
            part.split("=", 1)
            for part in base64.b64decode(args[1]).decode().split("\x01")
            if "=" in part
        )
        token = fields.get("auth", "").removeprefix("Bearer ")
        account = self.authorisation.access_tokens.get(token)
        ok = account is not None and account == fields.get("user")
        self.mechanisms.append("XOAUTH2")
        if ok:
            self.accounts.append(fields["user"])
        return AuthResult(success=ok, handled=False)
