"""OAuth2 for the mailbox and the relay: the device-code login, the stored grant, access tokens.

Microsoft 365 and Google no longer take passwords for IMAP and SMTP from most accounts; they
take an access token (SASL XOAUTH2, or OAUTHBEARER from RFC 7628) that lives about an hour.
`qa-mailer auth login` runs the provider's device-code flow once (RFC 8628: the organiser opens
a page, enters a code and consents; the browser flow is in oauth2_browser.py) and stores the
refresh token in ``oauth2.token_file``, readable by its owner only.
``TokenSource`` trades it for access tokens at the token endpoint (RFC 6749, section 6), a
minute before the current one expires, and stores a rotated refresh token when the provider
sends one. A refresh the provider refuses (``invalid_grant``: revoked, expired, password
changed) is a mistake retrying cannot fix: it says to run `qa-mailer auth login` again.

HTTP goes through the standard library (``urllib``) in a worker thread: two small form POSTs
an hour need no HTTP client dependency.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from qa_mailer.config import Mechanism, OAuth2Config
from qa_mailer.diagnose import Misconfigured

# An access token is renewed this long before it expires, so none expires mid-connection.
RENEW_BEFORE_SECONDS = 60.0
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class GrantRefused(Misconfigured):
    """The provider refused the stored grant, or there is none: `qa-mailer auth login`."""


class TokenEndpointError(OSError):
    """The token endpoint could not be reached or answered nonsense (retrying may help)."""


def xoauth2(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, before base64 (Google's and Microsoft's format)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def oauthbearer(user: str, token: str, host: str, port: int) -> str:
    """The SASL OAUTHBEARER initial response (RFC 7628, 3.1), before base64."""
    # The GS2 header's authzid escapes "=" and "," (RFC 5801, 4).
    authzid = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"


def choose_mechanism(setting: Mechanism, offered: Collection[str], section: str) -> str:
    """The SASL mechanism to log in with, given ``oauth2.mechanism`` and what the server offers
    (upper-case names); Misconfigured, naming the keys, when the server offers neither."""
    wanted = ("XOAUTH2", "OAUTHBEARER") if setting == "auto" else (setting,)
    for mechanism in wanted:
        if mechanism in offered:
            return mechanism
    names = (
        "offers neither XOAUTH2 nor OAUTHBEARER"
        if setting == "auto"
        else f"does not offer {setting}"
    )
    hint = (
        f'set oauth2.mechanism = "{"OAUTHBEARER" if setting == "XOAUTH2" else "XOAUTH2"}"'
        if setting != "auto" and ({"XOAUTH2", "OAUTHBEARER"} & set(offered))
        else f'set {section}.auth = "password", or check {section}.host'
    )
    raise Misconfigured(f"the server {names}: {hint}")


def read_grant(path: Path) -> dict[str, Any]:
    """The stored grant; GrantRefused when there is none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GrantRefused(
            f"no OAuth2 grant in {path}: run `qa-mailer auth login` (oauth2.token_file)"
        ) from None
    except (OSError, ValueError) as exc:
        raise GrantRefused(f"{path} cannot be read ({exc}): run `qa-mailer auth login`") from exc
    if not isinstance(data, dict) or not data.get("refresh_token"):
        raise GrantRefused(f"{path} holds no refresh token: run `qa-mailer auth login`")
    return data


def write_grant(path: Path, grant: Mapping[str, Any]) -> None:
    """Store the grant readable by its owner only (0600), replacing the old one at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.unlink(missing_ok=True)
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(dict(grant), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)


async def post_form(url: str, fields: Mapping[str, str], timeout: float) -> tuple[int, Any]:
    """POST a form; the HTTP status and the JSON answer (an error status is an answer too)."""

    def call() -> tuple[int, Any]:
        body = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(
            url, data=body, headers={"Accept": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            with error:
                try:
                    return error.code, json.loads(error.read() or b"{}")
                except ValueError:
                    return error.code, {}
        except ValueError as exc:
            raise TokenEndpointError(f"{url} answered something other than JSON") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TokenEndpointError(f"{url} cannot be reached: {exc}") from exc

    return await asyncio.to_thread(call)


class TokenSource:
    """Access tokens for one grant, renewed before they expire; one per process."""

    def __init__(self, config: OAuth2Config, now: Callable[[], float] = time.time):
        self.config = config
        self._now = now
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def access_token(self) -> str:
        """A token good for at least another minute."""
        async with self._lock:
            if self._token is None or self._now() >= self._expires_at - RENEW_BEFORE_SECONDS:
                await self._refresh()
            assert self._token is not None
            return self._token

    def forget(self) -> None:
        """Drop the current token (the server refused it): the next call asks for a new one."""
        self._token = None

    async def _refresh(self) -> None:
        config = self.config
        grant = read_grant(config.token_file)
        fields = {
            "grant_type": "refresh_token",
            "refresh_token": str(grant["refresh_token"]),
            "client_id": config.client_id,
        }
        secret = config.client_secret()
        if secret:
            fields["client_secret"] = secret
        if config.scope:
            fields["scope"] = config.scope
        status, answer = await post_form(config.token_url, fields, config.timeout_seconds)
        if status >= 400 or not isinstance(answer, dict) or "access_token" not in answer:
            error = answer.get("error", status) if isinstance(answer, dict) else status
            if error in ("invalid_grant", "invalid_client", "unauthorized_client"):
                detail = answer.get("error_description", "") if isinstance(answer, dict) else ""
                raise GrantRefused(
                    f"the provider refused the OAuth2 grant ({error}{': ' if detail else ''}"
                    f"{detail}): run `qa-mailer auth login` again"
                )
            raise TokenEndpointError(f"the token endpoint answered {status}: {error}")
        self._token = str(answer["access_token"])
        self._expires_at = self._now() + float(answer.get("expires_in", 3600))
        if answer.get("refresh_token") and answer["refresh_token"] != grant["refresh_token"]:
            # The provider rotated the refresh token: the old one will not work again.
            write_grant(config.token_file, {**grant, "refresh_token": answer["refresh_token"]})


async def device_login(
    config: OAuth2Config,
    tell: Callable[[str], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """RFC 8628: show the page and the code, wait for the organiser's consent, store the grant."""
    if config.device_url is None:
        raise Misconfigured(
            "oauth2.device_url is not set: the provider's device-code endpoint "
            "(or sign in with `qa-mailer auth login --browser` and oauth2.authorize_url)"
        )
    fields = {"client_id": config.client_id}
    if config.scope:
        fields["scope"] = config.scope
    status, device = await post_form(config.device_url, fields, config.timeout_seconds)
    if status >= 400 or not isinstance(device, dict) or "device_code" not in device:
        raise Misconfigured(
            f"the device-code endpoint refused the login ({status}: "
            f"{device.get('error_description') or device.get('error') if isinstance(device, dict) else ''}): "
            "check oauth2.client_id, oauth2.scope and oauth2.device_url"
        )
    page = device.get("verification_uri_complete") or device.get("verification_uri")
    tell(f"Open {page} and enter the code {device.get('user_code')}; waiting for the consent.")
    interval = float(device.get("interval", 5))
    deadline = float(device.get("expires_in", 900))
    waited = 0.0
    poll = {
        "grant_type": DEVICE_CODE_GRANT,
        "device_code": str(device["device_code"]),
        "client_id": config.client_id,
    }
    secret = config.client_secret()
    if secret:
        poll["client_secret"] = secret
    while waited < deadline:
        await sleep(interval)
        waited += interval
        status, answer = await post_form(config.token_url, poll, config.timeout_seconds)
        error = answer.get("error") if isinstance(answer, dict) else None
        if status < 400 and isinstance(answer, dict) and answer.get("refresh_token"):
            write_grant(config.token_file, {"refresh_token": answer["refresh_token"]})
            tell(f"Signed in; the grant is stored in {config.token_file} (mode 0600).")
            return
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        raise Misconfigured(f"the login did not complete ({error or status})")
    raise Misconfigured("the code expired before the consent was given: run it again")
