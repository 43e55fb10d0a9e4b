"""Shared test helpers: a clock tests move by hand, configs written as real TOML, mail builders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, TypeVar

from qa_mailer.clock import Clock
from qa_mailer.config import Config, SmtpRelayConfig, load_config
from qa_mailer.db.engine import SessionFactory
from qa_mailer.workers import Workers

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"

QA = "qa@clusters.example.org"
EXPERT = "expert@clusters.example.org"
ORGANISER = "organisers@clusters.example.org"


class FakeClock:
    """A clock that moves only when a test says so."""

    def __init__(self, start: datetime | None = None):
        self.moment = start or datetime(2026, 12, 3, 12, 30, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, **kwargs: float) -> None:
        self.moment += timedelta(**kwargs)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: Mapping[str, Any]) -> str:
    """Enough TOML for config files: scalars, lists, tables and arrays of tables."""
    lines: list[str] = []
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    arrays = {
        k: v for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], Mapping)
    }
    for key, value in data.items():
        if key not in tables and key not in arrays:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    for name, items in arrays.items():
        for item in items:
            lines.append(f"\n[[{name}]]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
    return "\n".join(lines) + "\n"


def base_settings(folder: Path, database_url: str) -> dict[str, Any]:
    """Settings like the shipped config.toml, with every file under ``folder``."""
    return {
        "service": {"name": "Clusters Q&A", "address": QA, "timezone": "Europe/Sofia"},
        "database": {"url": database_url},
        "listener": {"enabled": True, "host": "127.0.0.1", "port": 8025},
        "outgoing": {
            "transport": "maildir",
            "maildir": str(folder / "outbox"),
            "retry_base_seconds": 1,
        },
        "programme": {
            "experts": [EXPERT],
            "organisers": [ORGANISER],
            "roster": str(folder / "roster.csv"),
        },
        "digest": {"automatic": True, "delay_minutes": 30},
        # No DNS in the tests: the listener's own SPF/DKIM/DMARC check is turned on only by
        # the tests about it, which serve the records themselves. Replies in tests come
        # seconds after the expert's copy, which the shipped 60 s would hold as automatic.
        "authentication": {"verify": False},
        "expert_check": {"min_reply_seconds": 0},
        # Parsing in the test's own process: starting helper processes for every test that
        # runs the service would cost seconds (tests that are about the helpers ask for them).
        "workers": {"parse_processes": 0},
        "sessions": [
            {
                "number": n,
                "title": title,
                "start": datetime(2026, 12, n * 7 - 4, 14, tzinfo=UTC),
                "end": datetime(2026, 12, n * 7 - 4, 16, tzinfo=UTC),
            }
            for n, title in enumerate(
                [
                    "Social environment",
                    "Managerial dynamics",
                    "Exportable model?",
                    "Legno Arredo Brianza",
                    "Own cases",
                ],
                start=1,
            )
        ],
    }


ROSTER = """email,name,country,organisation,city
petar@mebeli.example.bg,Petar Ivanov,BG,Mebeli,Sofia
ana@drvo.example.hr,Ana Horvat,HR,Drvo,Zagreb
milan@gmail.example.com,Milan Jovanovic,RS,Namestaj,Novi Sad
ayse@mobilya.example.com.tr,Ayse Yilmaz,TR,Mobilya,Istanbul
olga@mebel.example.ru,Olga Smirnova,Russia,Mebel,Kazan
"""


def write_config(folder: Path, database_url: str, **sections: Any) -> Config:
    """Write config.toml (and roster.csv) into ``folder``, overriding whole sections, and load it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "roster.csv").write_text(ROSTER, encoding="utf-8")
    settings = base_settings(folder, database_url)
    for name, value in sections.items():
        if value is None:
            settings.pop(name, None)
        elif isinstance(value, Mapping) and isinstance(settings.get(name), Mapping):
            settings[name] = {**settings[name], **value}
        else:
            settings[name] = value
    path = folder / "config.toml"
    path.write_text(to_toml(settings), encoding="utf-8")
    return load_config(path)


def local_relay(port: int, **settings: Any) -> SmtpRelayConfig:
    """[smtp] settings for a relay on 127.0.0.1: plain SMTP, no login, a 10 s timeout, except
    what ``settings`` change."""
    plain = SmtpRelayConfig(
        host="127.0.0.1",
        port=port,
        security="none",
        username=None,
        password_env=None,
        timeout_seconds=10,
        ca_file=None,
    )
    return replace(plain, **settings)


def make_mail(
    *,
    sender: str,
    subject: str,
    body: str = "",
    to: str = QA,
    html: str | None = None,
    charset: str = "utf-8",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: Mapping[str, str] | None = None,
    date: datetime | None = None,
) -> bytes:
    """A mail as a client would send it."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(date or datetime.now(UTC))
    mail["Message-ID"] = message_id or make_msgid(domain=sender.rpartition("@")[2] or "example.org")
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = references
    for name, value in (headers or {}).items():
        mail[name] = value
    if body or html is None:
        mail.set_content(body, charset=charset)
    if html is not None:
        if body:
            mail.add_alternative(html, subtype="html", charset=charset)
        else:
            mail.set_content(html, subtype="html", charset=charset)
    return mail.as_bytes()


async def registered(
    sessions: SessionFactory, clock: Clock, roles: tuple[str, ...] = ("test",)
) -> Workers:
    """This test as a registered worker, so its stages can claim work."""
    workers = Workers(sessions, clock)
    await workers.register(roles)
    return workers


async def wait_until(
    check: Callable[[], Awaitable[T]], timeout: float = 10.0, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what} (last: {result!r})"
            )
        await asyncio.sleep(0.05)
