"""The configuration's values: frozen dataclasses, one per table of config.toml."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from qa_mailer.addresses import ServiceAddress

# The languages the service writes mail in: Serbian in both scripts ("sr" Cyrillic).
LANGUAGES = ("en", "bg", "ru", "sr", "sr-Latn", "hr", "tr", "it")


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why."""


Security = Literal["tls", "starttls", "none"]
ExpertMail = Literal["each", "batch"]
EXPERT_MAIL_CHOICES: tuple[ExpertMail, ...] = ("each", "batch")
SECURITY_CHOICES: tuple[Security, ...] = ("tls", "starttls", "none")


@dataclass(frozen=True)
class SessionConfig:
    """One videoconference session of the programme."""

    number: int
    title: str
    start: datetime
    end: datetime
    experts: tuple[str, ...]
    # "each": every question goes to the expert as it arrives; "batch": questions wait and go
    # together, one mail with several [Q-n] anchors, every programme.batch_minutes.
    expert_mail: ExpertMail = "each"
    # The language of the expert's copies and receipts ("en", "it", ...).
    expert_language: str = "en"

    @property
    def code(self) -> str:
        return f"VC{self.number}"


@dataclass(frozen=True)
class CountryConfig:
    """A participating country: its code, name, and the mail domains that imply it."""

    code: str
    name: str
    domains: tuple[str, ...]


@dataclass(frozen=True)
class ListenerConfig:
    """The SMTP or LMTP listener that takes mail in."""

    enabled: bool
    host: str
    port: int
    protocol: Literal["smtp", "lmtp"]
    max_message_bytes: int


Mechanism = Literal["auto", "XOAUTH2", "OAUTHBEARER"]


@dataclass(frozen=True)
class OAuth2Config:
    """An OAuth2 grant for the mailbox and the relay (Microsoft 365, Google, any provider).

    `qa-mailer auth login` runs the device-code flow once and stores the refresh token in
    ``token_file`` (mode 0600); the service trades it for access tokens at ``token_url``.
    """

    token_url: str
    device_url: str | None
    client_id: str
    client_secret_env: str | None
    scope: str
    token_file: Path
    timeout_seconds: float = 30.0
    # The SASL mechanism: "auto" takes XOAUTH2 where the server offers it, else OAUTHBEARER.
    mechanism: Mechanism = "auto"
    # The authorization endpoint, for `qa-mailer auth login --browser` (code flow with PKCE).
    authorize_url: str | None = None

    def client_secret(self) -> str | None:
        if self.client_secret_env is None:
            return None
        return _secret(self.client_secret_env, "oauth2.client_secret_env")


@dataclass(frozen=True)
class ImapConfig:
    """The Q&A mailbox polled with IMAP IDLE."""

    host: str
    port: int
    security: Security
    username: str
    password_env: str
    mailbox: str
    processed: Literal["folder", "keyword"]
    processed_folder: str
    processed_keyword: str
    use_idle: bool
    idle_renew_seconds: float
    poll_seconds: float
    timeout_seconds: float
    fetch_batch: int
    ca_file: Path | None
    # A fetch batch holds at most this many bytes of mail (a larger single message goes alone).
    fetch_batch_bytes: int = 8 * 1024 * 1024
    # Log in with XOAUTH2 and this grant instead of the password.
    oauth2: OAuth2Config | None = None
    # How many connections to the relay a sending process keeps open and sends over at once.
    connections: int = 3
    # At most this many mails a second from one sending process (0: as fast as the relay takes).
    max_per_second: float = 0.0

    def password(self) -> str:
        """The password from the environment variable the config names."""
        return _secret(self.password_env, "imap.password_env")

    @property
    def account(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"


@dataclass(frozen=True)
class SmtpRelayConfig:
    """The relay that outgoing mail is handed to when ``outgoing.transport = "smtp"``."""

    host: str
    port: int
    security: Security
    username: str | None
    password_env: str | None
    timeout_seconds: float
    ca_file: Path | None
    # Log in with XOAUTH2 and this grant instead of the password.
    oauth2: OAuth2Config | None = None
    # How many connections to the relay a sending process keeps open and sends over at once.
    connections: int = 3
    # At most this many mails a second from one sending process (0: as fast as the relay takes).
    max_per_second: float = 0.0

    def password(self) -> str | None:
        if self.password_env is None or self.oauth2 is not None:
            return None
        return _secret(self.password_env, "smtp.password_env")


@dataclass(frozen=True)
class OutgoingConfig:
    """How outgoing mail leaves: a local Maildir or an SMTP relay, with retries."""

    transport: Literal["maildir", "smtp"]
    maildir: Path
    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    # An address that bounced for good this many times is sent no more mail (0: never stop).
    bounce_limit: int = 3
    # The envelope sender of each mail names its outbox row, signed (send/verp.py), so a
    # bounce is matched to the mail it returns; off for a relay that refuses plus addresses
    # in MAIL FROM.
    verp: bool = True


@dataclass(frozen=True)
class DigestConfig:
    """When and how the organisers' digest is produced."""

    automatic: bool
    # No automatic digest of a session before its end plus this delay.
    delay: timedelta
    write_to: Path | None
    # The organisers' time zone: the daily digest goes at ``hour`` there, and it shows times
    # in it.
    timezone: ZoneInfo
    hour: int
    # A session's closing digest goes when all its questions are answered, or this long after
    # its end, whichever comes first.
    closing_after: timedelta
    # Mail the organisers when messages are held or quarantined: at most one notice per
    # ``notice_every``, listing every message not yet told.
    notices: bool
    notice_every: timedelta
    # The programme report goes every this many days at the digest hour, when something
    # happened since the last one; 0 never sends it by itself.
    programme_days: int
    # Each list of questions in a digest's body (waiting, answered since, answered before)
    # and the programme report's list of open questions show at most this many; the rest are
    # in the attached list and in `qa-mailer export`.
    list_questions: int = 20
    # The whole digest mail as sent (headers, both parts and the attached list, encoded) stays
    # within this many kilobytes (1,000 bytes); a list that would not fit is left out, and the
    # digest says so and names the export command.
    size_budget_kb: int = 300


@dataclass(frozen=True)
class WorkersConfig:
    """How the processes on one database tell each other they are alive."""

    heartbeat_seconds: float
    dead_after_seconds: float
    # Helper processes that parse mail beside the processing stage ("auto": one per spare
    # core, at most 4; 0: parse in the service's own process).
    parse_processes: int


@dataclass(frozen=True)
class ExpertCheckConfig:
    """How strictly an expert's reply must prove where it comes from."""

    require_authentication: bool
    trusted_authserv_ids: tuple[str, ...]
    # A reply that arrives sooner than this after the expert's copy was sent is held: nobody
    # reads and answers a question that fast, a vacation responder does.
    min_reply_seconds: float = 60.0


@dataclass(frozen=True)
class AuthenticationConfig:
    """How the listener checks SPF, DKIM and DMARC of the mail it takes in itself."""

    verify: bool
    authserv_id: str
    # (host, port) pairs of DNS servers; empty means the system's resolver.
    dns_servers: tuple[tuple[str, int], ...]
    dns_timeout_seconds: float


@dataclass(frozen=True)
class PrivacyConfig:
    """How long the raw mail and the bodies of sent mail are kept."""

    # Raw mail received, and the bodies of mail sent, older than this are removed by the
    # service (what became of them, questions and answers stay); None keeps them.
    keep_mail: timedelta | None = None
    # `participants erase` also deletes the participant's mail from the IMAP mailbox (the
    # watched folder and Processed).
    erase_mailbox_copies: bool = False


@dataclass(frozen=True)
class AnswersConfig:
    """How long a reply token stays good, and how many unknown ones a sender may send."""

    # A reply token is good until this many days after its session's end (or after the mail
    # was sent, if that was later).
    token_valid_days: float
    # Replies with unknown tokens held per sender per hour; further ones are ignored.
    unknown_token_limit_per_hour: int


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    path: Path
    service_name: str
    address: ServiceAddress
    timezone: ZoneInfo
    database_url: str
    templates: Path | None
    listener: ListenerConfig
    imap: ImapConfig | None
    smtp: SmtpRelayConfig | None
    outgoing: OutgoingConfig
    organisers: tuple[str, ...]
    # The language of the digests and notices to the organisers.
    organiser_language: str
    roster: Path | None
    acknowledge: bool
    ack_limit_per_hour: int
    batch_every: timedelta
    expert_check: ExpertCheckConfig
    authentication: AuthenticationConfig
    answers: AnswersConfig
    digest: DigestConfig
    workers: WorkersConfig
    countries: tuple[CountryConfig, ...]
    sessions: tuple[SessionConfig, ...]
    privacy: PrivacyConfig = PrivacyConfig()

    def session(self, number: int) -> SessionConfig:
        """The session with this number; KeyError when there is none."""
        for session in self.sessions:
            if session.number == number:
                return session
        raise KeyError(number)

    @property
    def experts(self) -> frozenset[str]:
        """Every expert address of every session."""
        return frozenset(e for session in self.sessions for e in session.experts)


DEFAULT_COUNTRIES = (
    CountryConfig("BG", "Bulgaria", ("bg",)),
    CountryConfig("HR", "Croatia", ("hr",)),
    CountryConfig("RS", "Serbia", ("rs", "srb")),
    CountryConfig("TR", "Turkey", ("tr",)),
    CountryConfig("RU", "Russia", ("ru", "su")),
)


def _secret(variable: str, key: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"{key}: environment variable {variable} is not set")
    return value
