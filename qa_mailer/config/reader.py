"""Reading config.toml: typed access to each table, and an error naming the key for every mistake."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from qa_mailer.addresses import ServiceAddress, is_address, normalise
from qa_mailer.config.model import (
    DEFAULT_COUNTRIES,
    EXPERT_MAIL_CHOICES,
    LANGUAGES,
    SECURITY_CHOICES,
    AnswersConfig,
    AuthenticationConfig,
    Config,
    ConfigError,
    CountryConfig,
    DigestConfig,
    ExpertCheckConfig,
    ExpertMail,
    ImapConfig,
    ListenerConfig,
    Mechanism,
    OAuth2Config,
    OutgoingConfig,
    PrivacyConfig,
    Security,
    SessionConfig,
    SmtpRelayConfig,
    WorkersConfig,
)

T = TypeVar("T")


class _Section:
    """Typed access to one table of the file, remembering its dotted name for errors."""

    def __init__(self, reader: Reader, name: str, data: Mapping[str, Any], known: set[str]):
        unknown = sorted(set(data) - known)
        if unknown:
            raise reader.error(
                f"{name}.{unknown[0]}" if name else unknown[0],
                f"a known key ({', '.join(sorted(known))})",
                "an unknown key",
            )
        self.reader, self.name, self.data = reader, name, data

    def key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def get(self, key: str, kind: type[T], default: T | None, expected: str) -> T:
        if key not in self.data and default is None:
            raise self.reader.error(self.key(key), expected, "nothing (the key is missing)")
        value = self.data.get(key, default)
        # bool is an int in Python; a number where a switch is expected is a mistake.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.reader.error(self.key(key), expected, repr(value))
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value = self.get(key, str, default, "a string")
        if value is None or not value.strip():
            raise self.reader.error(self.key(key), "a non-empty string", repr(value))
        return value.strip()

    def optional_text(self, key: str) -> str | None:
        if self.data.get(key) in (None, ""):
            return None
        return self.text(key)

    def flag(self, key: str, default: bool) -> bool:
        return self.get(key, bool, default, "true or false")

    def number(self, key: str, default: float, *, minimum: float = 0) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise self.reader.error(self.key(key), f"a number >= {minimum}", repr(value))
        return float(value)

    def integer(
        self, key: str, default: int | None, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self.get(key, int, default, "an integer")
        if value is None or value < minimum or (maximum is not None and value > maximum):
            bound = f" between {minimum} and {maximum}" if maximum is not None else f" >= {minimum}"
            raise self.reader.error(self.key(key), f"an integer{bound}", repr(value))
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default, "a string")
        if value not in choices:
            raise self.reader.error(
                self.key(key), " or ".join(repr(c) for c in choices), repr(value)
            )
        return value

    def address(self, key: str, default: str | None = None) -> str:
        value = self.text(key, default)
        if not is_address(value):
            raise self.reader.error(self.key(key), "an e-mail address", repr(value))
        return normalise(value)

    def addresses(self, key: str, default: list[str] | None = None) -> tuple[str, ...]:
        values = self.get(key, list, default or [], "a list of e-mail addresses")
        for index, value in enumerate(values):
            if not isinstance(value, str) or not is_address(value):
                raise self.reader.error(
                    f"{self.key(key)}[{index}]", "an e-mail address", repr(value)
                )
        return tuple(normalise(v) for v in values)

    def path(self, key: str, default: str | None) -> Path | None:
        value = self.get(key, str, default, "a path") if key in self.data else default
        if not value:
            return None
        return self.reader.resolve(value)


DATABASE_URL_ENV = "QA_MAILER_DATABASE_URL"


class Reader:
    def __init__(self, path: Path):
        self.path = path

    def error(self, key: str, expected: str, got: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: expected {expected}, got {got}")

    def resolve(self, value: str) -> Path:
        # Relative paths are relative to the file, so the service behaves the same whatever
        # the working directory it is started from.
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (self.path.parent / candidate).resolve()

    def table(self, data: Mapping[str, Any], name: str, known: set[str]) -> _Section:
        value = data.get(name.rpartition(".")[2], {})
        if not isinstance(value, dict):
            raise self.error(name, "a table", repr(value))
        return _Section(self, name, value, known)

    def config(self, data: Mapping[str, Any]) -> Config:
        _Section(self, "", data, _TOP_LEVEL)
        service = self.table(data, "service", {"name", "address", "timezone", "templates"})
        timezone = self.zone(service, "timezone", "UTC")
        programme = self.table(
            data,
            "programme",
            {
                "experts",
                "organisers",
                "roster",
                "acknowledge",
                "ack_limit_per_hour",
                "expert_mail",
                "batch_minutes",
                "expert_language",
                "organiser_language",
            },
        )
        default_experts = programme.addresses("experts")
        default_expert_language = programme.choice("expert_language", LANGUAGES, "en")
        default_mode = cast(
            ExpertMail, programme.choice("expert_mail", EXPERT_MAIL_CHOICES, "each")
        )
        countries = self.countries(data)
        outgoing = self.outgoing(data)
        smtp = self.smtp(data) if "smtp" in data else None
        address = ServiceAddress.parse(service.address("address"))
        authentication = self.authentication(data, address.domain)
        listener = self.listener(data)
        if outgoing.transport == "smtp" and smtp is None:
            raise self.error("smtp", 'an [smtp] table because outgoing.transport = "smtp"', "none")
        return Config(
            path=self.path,
            service_name=service.text("name", "Q&A"),
            address=address,
            timezone=timezone,
            database_url=self.database_url(data),
            templates=service.path("templates", None),
            listener=listener,
            imap=self.imap(data),
            smtp=smtp,
            outgoing=outgoing,
            organisers=programme.addresses("organisers"),
            organiser_language=programme.choice("organiser_language", LANGUAGES, "en"),
            roster=programme.path("roster", None),
            acknowledge=programme.flag("acknowledge", True),
            ack_limit_per_hour=programme.integer("ack_limit_per_hour", 5, minimum=0),
            batch_every=timedelta(minutes=programme.number("batch_minutes", 60)),
            expert_check=self.expert_check(data, authentication, listener),
            authentication=authentication,
            answers=self.answers(data),
            digest=self.digest(data, timezone),
            workers=self.workers(data),
            countries=countries,
            sessions=self.sessions(
                data, timezone, default_experts, default_mode, default_expert_language
            ),
            privacy=self.privacy(data),
        )

    def zone(self, section: _Section, key: str, default: str) -> ZoneInfo:
        name = section.text(key, default)
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.error(
                section.key(key), "an IANA time zone such as Europe/Sofia", repr(name)
            ) from None

    def database_url(self, data: Mapping[str, Any]) -> str:
        database = self.table(data, "database", {"url", "url_env"})
        # QA_MAILER_DATABASE_URL by default, as the systemd unit's and the container's
        # secrets name it; url_env = "" turns the look-up off.
        variable = (
            database.optional_text("url_env") if "url_env" in database.data else DATABASE_URL_ENV
        )
        if variable and os.environ.get(variable):
            return os.environ[variable]
        url = database.text("url", "sqlite+aiosqlite:///var/qa-mailer.db")
        prefix = "sqlite+aiosqlite:///"
        if url.startswith("sqlite") and not url.startswith(prefix):
            raise self.error("database.url", f"a SQLite URL starting {prefix!r}", repr(url))
        if url.startswith(prefix) and url != prefix + ":memory:":
            # A relative SQLite path is relative to the configuration file, not to the shell.
            url = prefix + str(self.resolve(url[len(prefix) :]))
        return url

    def listener(self, data: Mapping[str, Any]) -> ListenerConfig:
        section = self.table(
            data, "listener", {"enabled", "host", "port", "protocol", "max_message_bytes"}
        )
        return ListenerConfig(
            enabled=section.flag("enabled", True),
            host=section.text("host", "127.0.0.1"),
            port=section.integer("port", 8025, minimum=1, maximum=65535),
            protocol=cast(
                Literal["smtp", "lmtp"], section.choice("protocol", ("smtp", "lmtp"), "smtp")
            ),
            max_message_bytes=section.integer("max_message_bytes", 25 * 1024 * 1024, minimum=1024),
        )

    def oauth2(self, data: Mapping[str, Any], user: str) -> OAuth2Config:
        """The [oauth2] table, required by ``user`` (``imap.auth = "oauth2"``)."""
        if "oauth2" not in data:
            raise self.error("oauth2", f'an [oauth2] table because {user} = "oauth2"', "none")
        section = self.table(
            data,
            "oauth2",
            {
                "token_url",
                "device_url",
                "client_id",
                "client_secret_env",
                "scope",
                "token_file",
                "timeout_seconds",
                "mechanism",
                "authorize_url",
            },
        )
        token_file = section.path("token_file", "var/oauth2-token.json")
        assert token_file is not None
        return OAuth2Config(
            token_url=section.text("token_url"),
            device_url=section.optional_text("device_url"),
            client_id=section.text("client_id"),
            client_secret_env=section.optional_text("client_secret_env"),
            scope=section.text("scope", ""),
            token_file=token_file,
            timeout_seconds=section.number("timeout_seconds", 30, minimum=1),
            mechanism=cast(
                Mechanism, section.choice("mechanism", ("auto", "XOAUTH2", "OAUTHBEARER"), "auto")
            ),
            authorize_url=section.optional_text("authorize_url"),
        )

    def imap(self, data: Mapping[str, Any]) -> ImapConfig | None:
        section = self.table(data, "imap", _IMAP_KEYS)
        if not section.flag("enabled", False):
            return None
        oauth2 = (
            self.oauth2(data, "imap.auth")
            if section.choice("auth", ("password", "oauth2"), "password") == "oauth2"
            else None
        )
        security = cast(Security, section.choice("security", SECURITY_CHOICES, "tls"))
        renew = section.number("idle_renew_seconds", 300, minimum=1)
        if renew >= 29 * 60:
            raise self.error(
                "imap.idle_renew_seconds", "fewer than 1740 seconds (RFC 2177)", repr(renew)
            )
        return ImapConfig(
            host=section.text("host"),
            port=section.integer(
                "port", 993 if security == "tls" else 143, minimum=1, maximum=65535
            ),
            security=security,
            username=section.text("username"),
            password_env=section.text("password_env", "QA_MAILER_IMAP_PASSWORD"),
            mailbox=section.text("mailbox", "INBOX"),
            processed=cast(
                Literal["folder", "keyword"],
                section.choice("processed", ("folder", "keyword"), "folder"),
            ),
            processed_folder=section.text("processed_folder", "Processed"),
            processed_keyword=section.text("processed_keyword", "$QaMailerStored"),
            use_idle=section.flag("idle", True),
            idle_renew_seconds=renew,
            poll_seconds=section.number("poll_seconds", 60, minimum=1),
            timeout_seconds=section.number("timeout_seconds", 30, minimum=1),
            fetch_batch=section.integer("fetch_batch", 25, minimum=1, maximum=500),
            ca_file=section.path("ca_file", None),
            fetch_batch_bytes=section.integer(
                "fetch_batch_bytes", 8 * 1024 * 1024, minimum=64 * 1024
            ),
            oauth2=oauth2,
        )

    def smtp(self, data: Mapping[str, Any]) -> SmtpRelayConfig:
        section = self.table(
            data,
            "smtp",
            {
                "host",
                "port",
                "security",
                "username",
                "password_env",
                "timeout_seconds",
                "ca_file",
                "auth",
                "connections",
                "max_per_second",
            },
        )
        security = cast(Security, section.choice("security", SECURITY_CHOICES, "starttls"))
        username = section.optional_text("username")
        password_env = section.optional_text("password_env")
        oauth2 = None
        if section.choice("auth", ("password", "oauth2"), "password") == "oauth2":
            oauth2 = self.oauth2(data, "smtp.auth")
            if not username:
                raise self.error(
                    "smtp.username", 'the account, because smtp.auth = "oauth2"', "none"
                )
        elif username and not password_env:
            raise self.error(
                "smtp.password_env", "the variable holding the password of smtp.username", "none"
            )
        return SmtpRelayConfig(
            host=section.text("host"),
            port=section.integer(
                "port",
                {"tls": 465, "starttls": 587, "none": 25}[security],
                minimum=1,
                maximum=65535,
            ),
            security=security,
            username=username,
            password_env=password_env,
            timeout_seconds=section.number("timeout_seconds", 30, minimum=1),
            ca_file=section.path("ca_file", None),
            oauth2=oauth2,
            connections=section.integer("connections", 3, minimum=1, maximum=50),
            max_per_second=section.number("max_per_second", 0),
        )

    def outgoing(self, data: Mapping[str, Any]) -> OutgoingConfig:
        section = self.table(
            data,
            "outgoing",
            {
                "transport",
                "maildir",
                "max_attempts",
                "retry_base_seconds",
                "retry_max_seconds",
                "bounce_limit",
                "verp",
            },
        )
        maildir = section.path("maildir", "var/outbox")
        assert maildir is not None
        return OutgoingConfig(
            transport=cast(
                Literal["maildir", "smtp"],
                section.choice("transport", ("maildir", "smtp"), "maildir"),
            ),
            maildir=maildir,
            max_attempts=section.integer("max_attempts", 12, minimum=1),
            retry_base_seconds=section.number("retry_base_seconds", 30, minimum=0.01),
            retry_max_seconds=section.number("retry_max_seconds", 3600, minimum=0.01),
            bounce_limit=section.integer("bounce_limit", 3, minimum=0),
            verp=section.flag("verp", True),
        )

    def expert_check(
        self,
        data: Mapping[str, Any],
        authentication: AuthenticationConfig,
        listener: ListenerConfig,
    ) -> ExpertCheckConfig:
        section = self.table(
            data,
            "expert_check",
            {"require_authentication", "trusted_authserv_ids", "min_reply_seconds"},
        )
        ids = section.get("trusted_authserv_ids", list, [], "a list of host names")
        if not all(isinstance(i, str) and i for i in ids):
            raise self.error("expert_check.trusted_authserv_ids", "a list of host names", repr(ids))
        required = section.flag("require_authentication", False)
        # The SMTP listener's own verdict is a trusted one, so it alone is enough to require.
        verifying = authentication.verify and listener.enabled and listener.protocol == "smtp"
        if required and not ids and not verifying:
            raise self.error(
                "expert_check.trusted_authserv_ids",
                "the host names whose Authentication-Results to trust "
                "when require_authentication = true (or authentication.verify = true "
                "with the SMTP listener)",
                "an empty list",
            )
        return ExpertCheckConfig(
            required,
            tuple(i.lower() for i in ids),
            min_reply_seconds=section.number("min_reply_seconds", 60),
        )

    def authentication(self, data: Mapping[str, Any], domain: str) -> AuthenticationConfig:
        section = self.table(
            data,
            "authentication",
            {"verify", "authserv_id", "dns_servers", "dns_timeout_seconds"},
        )
        expected = 'a list of "host" or "host:port" strings'
        servers = section.get("dns_servers", list, [], expected)
        parsed: list[tuple[str, int]] = []
        for server in servers:
            host, port = _host_port(server)
            if not host or port is None:
                raise self.error("authentication.dns_servers", expected, repr(servers))
            parsed.append((host, port))
        return AuthenticationConfig(
            verify=section.flag("verify", True),
            authserv_id=section.text("authserv_id", domain).lower(),
            dns_servers=tuple(parsed),
            dns_timeout_seconds=section.number("dns_timeout_seconds", 5, minimum=0.01),
        )

    def answers(self, data: Mapping[str, Any]) -> AnswersConfig:
        section = self.table(data, "answers", {"token_valid_days", "unknown_token_limit_per_hour"})
        return AnswersConfig(
            token_valid_days=section.number("token_valid_days", 28, minimum=0),
            unknown_token_limit_per_hour=section.integer(
                "unknown_token_limit_per_hour", 5, minimum=0
            ),
        )

    def privacy(self, data: Mapping[str, Any]) -> PrivacyConfig:
        section = self.table(data, "privacy", {"keep_mail_days", "erase_mailbox_copies"})
        days = section.number("keep_mail_days", 0, minimum=0)
        return PrivacyConfig(
            keep_mail=timedelta(days=days) if days else None,
            erase_mailbox_copies=section.flag("erase_mailbox_copies", False),
        )

    def digest(self, data: Mapping[str, Any], timezone: ZoneInfo) -> DigestConfig:
        section = self.table(
            data,
            "digest",
            {
                "automatic",
                "delay_minutes",
                "write_to",
                "timezone",
                "hour",
                "closing_days",
                "notices",
                "notice_minutes",
                "programme_days",
                "list_questions",
                "size_budget_kb",
            },
        )
        return DigestConfig(
            automatic=section.flag("automatic", True),
            delay=timedelta(minutes=section.number("delay_minutes", 60)),
            write_to=section.path("write_to", None),
            timezone=self.zone(section, "timezone", str(timezone.key)),
            hour=section.integer("hour", 8, minimum=0, maximum=23),
            closing_after=timedelta(days=section.number("closing_days", 14)),
            notices=section.flag("notices", True),
            notice_every=timedelta(minutes=section.number("notice_minutes", 15)),
            programme_days=section.integer("programme_days", 7, minimum=0),
            list_questions=section.integer("list_questions", 20, minimum=1, maximum=1000),
            size_budget_kb=section.integer("size_budget_kb", 300, minimum=50, maximum=50_000),
        )

    def workers(self, data: Mapping[str, Any]) -> WorkersConfig:
        section = self.table(
            data, "workers", {"heartbeat_seconds", "dead_after_seconds", "parse_processes"}
        )
        heartbeat = section.number("heartbeat_seconds", 3, minimum=0.1)
        dead_after = section.number("dead_after_seconds", 15, minimum=0.5)
        if dead_after < 2 * heartbeat:
            raise self.error(
                "workers.dead_after_seconds",
                f"at least twice workers.heartbeat_seconds ({2 * heartbeat:g})",
                repr(dead_after),
            )
        return WorkersConfig(heartbeat, dead_after, self.parse_processes(section))

    def parse_processes(self, section: _Section) -> int:
        value = section.data.get("parse_processes", "auto")
        if value == "auto":
            return min(4, (os.cpu_count() or 1) - 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
            raise self.error(
                "workers.parse_processes", '"auto" or an integer from 0 to 64', repr(value)
            )
        return value

    def countries(self, data: Mapping[str, Any]) -> tuple[CountryConfig, ...]:
        entries = data.get("countries")
        if entries is None:
            return DEFAULT_COUNTRIES
        if not isinstance(entries, list) or not entries:
            raise self.error("countries", "an array of [[countries]] tables", repr(entries))
        countries: list[CountryConfig] = []
        for index, entry in enumerate(entries):
            name = f"countries[{index}]"
            if not isinstance(entry, dict):
                raise self.error(name, "a table", repr(entry))
            section = _Section(self, name, entry, {"code", "name", "domains"})
            code = section.text("code").upper()
            if not code.isalpha() or len(code) != 2:
                raise self.error(section.key("code"), "a two-letter country code", repr(code))
            if any(c.code == code for c in countries):
                raise self.error(
                    section.key("code"), "a code not used by another country", repr(code)
                )
            domains = section.get("domains", list, [code.lower()], "a list of domain suffixes")
            if not all(isinstance(d, str) and d for d in domains):
                raise self.error(section.key("domains"), "a list of domain suffixes", repr(domains))
            countries.append(
                CountryConfig(
                    code, section.text("name", code), tuple(d.lower().strip(".") for d in domains)
                )
            )
        return tuple(countries)

    def sessions(
        self,
        data: Mapping[str, Any],
        timezone: ZoneInfo,
        default_experts: tuple[str, ...],
        default_mode: ExpertMail,
        default_expert_language: str,
    ) -> tuple[SessionConfig, ...]:
        entries = data.get("sessions")
        if not isinstance(entries, list) or not entries:
            raise self.error("sessions", "at least one [[sessions]] table", repr(entries))
        sessions: list[SessionConfig] = []
        for index, entry in enumerate(entries):
            name = f"sessions[{index}]"
            if not isinstance(entry, dict):
                raise self.error(name, "a table", repr(entry))
            section = _Section(
                self,
                name,
                entry,
                {
                    "number",
                    "title",
                    "start",
                    "end",
                    "timezone",
                    "experts",
                    "expert_mail",
                    "expert_language",
                },
            )
            number = section.integer("number", None, minimum=1, maximum=99)
            if any(s.number == number for s in sessions):
                raise self.error(
                    section.key("number"), "a number not used by another session", repr(number)
                )
            zone = (
                self.zone(section, "timezone", str(timezone.key))
                if "timezone" in entry
                else timezone
            )
            start = self.moment(section, "start", zone)
            end = self.moment(section, "end", zone)
            if end <= start:
                raise self.error(
                    section.key("end"), f"a time after start ({start.isoformat()})", end.isoformat()
                )
            experts = section.addresses("experts") or default_experts
            if not experts:
                raise self.error(
                    section.key("experts"),
                    "at least one expert here or in programme.experts",
                    "none",
                )
            mode = cast(
                ExpertMail, section.choice("expert_mail", EXPERT_MAIL_CHOICES, default_mode)
            )
            language = section.choice("expert_language", LANGUAGES, default_expert_language)
            sessions.append(
                SessionConfig(number, section.text("title"), start, end, experts, mode, language)
            )
        return tuple(sorted(sessions, key=lambda s: s.start))

    def moment(self, section: _Section, key: str, zone: ZoneInfo) -> datetime:
        value = section.data.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = datetime.fromisoformat(value)
        if not isinstance(value, datetime):
            raise self.error(
                section.key(key), "a date-time such as 2026-12-02T14:00:00", repr(value)
            )
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)


_TOP_LEVEL = {
    "service",
    "database",
    "listener",
    "imap",
    "smtp",
    "oauth2",
    "outgoing",
    "programme",
    "expert_check",
    "answers",
    "authentication",
    "digest",
    "workers",
    "privacy",
    "countries",
    "sessions",
}
_IMAP_KEYS = {
    "enabled",
    "auth",
    "host",
    "port",
    "security",
    "username",
    "password_env",
    "mailbox",
    "processed",
    "processed_folder",
    "processed_keyword",
    "idle",
    "idle_renew_seconds",
    "poll_seconds",
    "timeout_seconds",
    "fetch_batch",
    "fetch_batch_bytes",
    "ca_file",
}


def _host_port(value: object) -> tuple[str, int | None]:
    """("127.0.0.1", 53) from "127.0.0.1" or "127.0.0.1:53"; "[::1]:53" for IPv6."""
    if not isinstance(value, str):
        return "", None
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        return host, None
    return host, int(port)
