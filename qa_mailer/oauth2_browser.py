"""Browser sign-in: the authorization-code flow with PKCE and a loopback redirect.

Google wants installed applications to sign in this way (its device-code flow does not grant
the Gmail scopes), and Microsoft allows it too. `qa-mailer auth login --browser` opens the
provider's page (or prints it, where no browser runs), listens on 127.0.0.1 for the redirect
that carries the code (RFC 8252, 7.3), and trades the code for the grant at the token endpoint
with the PKCE verifier (RFC 7636, S256), so a code intercepted on the way is worth nothing
without it. The ``state`` value ties the redirect to this sign-in: a request to the listener
without it is refused and the wait goes on.

The redirect reaches the machine the browser runs on. On a server without one, forward the
port first (``ssh -L 8765:127.0.0.1:8765 server``, then ``--port 8765``) and open the printed
page on your own machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import urllib.parse
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass

from qa_mailer.config import OAuth2Config
from qa_mailer.diagnose import Misconfigured
from qa_mailer.oauth2 import post_form, write_grant

# How long the listener waits for the browser to come back with the code.
WAIT_SECONDS = 300.0
_PAGE = (
    "<!doctype html><meta charset=utf-8><title>qa-mailer</title>"
    "<p>{message}</p><p>You can close this page.</p>"
)


@dataclass(frozen=True)
class Pkce:
    """A PKCE verifier and its S256 challenge (RFC 7636, 4.1 and 4.2)."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        # 64 random bytes make 86 characters: within the RFC's 43 to 128.
        verifier = secrets.token_urlsafe(64)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def authorization_url(config: OAuth2Config, redirect_uri: str, state: str, pkce: Pkce) -> str:
    """The page the organiser signs in on."""
    assert config.authorize_url is not None
    query = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": redirect_uri,
        "scope": config.scope,
        "state": state,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        # Google returns a refresh token only when asked for offline access, and again
        # after an earlier consent only with prompt=consent; Microsoft ignores the first
        # and shows its consent page for the second.
        "access_type": "offline",
        "prompt": "consent",
    }
    separator = "&" if urllib.parse.urlsplit(config.authorize_url).query else "?"
    return f"{config.authorize_url}{separator}{urllib.parse.urlencode(query)}"


class _Redirect:
    """The loopback listener: waits for one request that carries our ``state``."""

    def __init__(self, state: str):
        self._state = state
        self.answer: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            # The rest of the head is of no interest, but is read so the browser sees a reply.
            while (await asyncio.wait_for(reader.readline(), 10)).strip():
                pass
            status, message = self._take(line.decode("latin-1"))
            body = _PAGE.format(message=message).encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (OSError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _take(self, request_line: str) -> tuple[str, str]:
        parts = request_line.split()
        if len(parts) < 2 or parts[0] != "GET":
            return "405 Method Not Allowed", "Not a sign-in."
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(parts[1]).query)
        fields = {key: values[0] for key, values in query.items()}
        if not secrets.compare_digest(fields.get("state", ""), self._state):
            # Not the answer to this sign-in (another page, a forged link): keep waiting.
            return "400 Bad Request", "This is not the sign-in qa-mailer is waiting for."
        if not self.answer.done():
            self.answer.set_result(fields)
        if "error" in fields:
            return "200 OK", "The sign-in did not complete; see the terminal."
        return "200 OK", "Signed in to qa-mailer."


async def browser_login(
    config: OAuth2Config,
    tell: Callable[[str], None],
    open_browser: Callable[[str], bool] = webbrowser.open,
    port: int = 0,
    wait_seconds: float = WAIT_SECONDS,
) -> None:
    """Sign in with the browser and store the grant in ``oauth2.token_file`` (mode 0600)."""
    if config.authorize_url is None:
        raise Misconfigured(
            "oauth2.authorize_url is not set: the provider's authorization endpoint "
            "(needed by `qa-mailer auth login --browser`)"
        )
    state, pkce = secrets.token_urlsafe(24), Pkce.new()
    redirect = _Redirect(state)
    try:
        server = await asyncio.start_server(redirect.handle, "127.0.0.1", port)
    except OSError as exc:
        raise Misconfigured(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from exc
    async with server:
        bound = server.sockets[0].getsockname()[1]
        redirect_uri = f"http://127.0.0.1:{bound}/"
        url = authorization_url(config, redirect_uri, state, pkce)
        tell(f"Open this page to sign in (waiting on {redirect_uri}):\n{url}")
        # Opening a browser may block until it is closed (a text-mode one): in a thread.
        opening = asyncio.ensure_future(asyncio.to_thread(open_browser, url))
        try:
            fields = await asyncio.wait_for(asyncio.shield(redirect.answer), wait_seconds)
        except TimeoutError:
            raise Misconfigured(
                f"no sign-in came back within {wait_seconds:.0f} s: run it again"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(opening, 5)
    if "error" in fields:
        detail = fields.get("error_description", "")
        raise Misconfigured(
            f"the provider refused the sign-in ({fields['error']}{': ' if detail else ''}"
            f"{detail}): check oauth2.client_id, oauth2.scope and the app registration"
        )
    if not fields.get("code"):
        raise Misconfigured("the provider came back without a code: run it again")
    await _exchange(config, fields["code"], redirect_uri, pkce)
    tell(f"Signed in; the grant is stored in {config.token_file} (mode 0600).")


async def _exchange(config: OAuth2Config, code: str, redirect_uri: str, pkce: Pkce) -> None:
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": config.client_id,
        "code_verifier": pkce.verifier,
    }
    secret = config.client_secret()
    if secret:
        fields["client_secret"] = secret
    status, answer = await post_form(config.token_url, fields, config.timeout_seconds)
    if status >= 400 or not isinstance(answer, dict) or not answer.get("refresh_token"):
        error = answer.get("error", status) if isinstance(answer, dict) else status
        detail = answer.get("error_description", "") if isinstance(answer, dict) else ""
        if status < 400 and isinstance(answer, dict) and "access_token" in answer:
            raise Misconfigured(
                "the provider gave no refresh token: add offline_access to oauth2.scope "
                "(Microsoft), or remove qa-mailer's access in the account and sign in again"
            )
        raise Misconfigured(
            f"the token endpoint refused the code ({error}{': ' if detail else ''}{detail}): "
            "check oauth2.token_url, oauth2.client_id and oauth2.client_secret_env"
        )
    write_grant(config.token_file, {"refresh_token": answer["refresh_token"]})
