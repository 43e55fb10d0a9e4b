"""config.toml read once into frozen dataclasses, and checked before anything starts.

Every key, its default and its meaning is documented in the shipped ``config.toml`` and the
README. An error names the file, the key and what was expected. Secrets never live in the file:
keys ending in ``_env`` name the environment variable that holds them.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from qa_mailer.config.model import (
    DEFAULT_COUNTRIES,
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
from qa_mailer.config.reader import Reader


def load_config(path: Path | str) -> Config:
    """Read and validate ``path``; raise ConfigError naming the key on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    return Reader(path).config(data)


__all__ = [
    "DEFAULT_COUNTRIES",
    "LANGUAGES",
    "SECURITY_CHOICES",
    "AnswersConfig",
    "AuthenticationConfig",
    "Config",
    "ConfigError",
    "CountryConfig",
    "DigestConfig",
    "ExpertCheckConfig",
    "ExpertMail",
    "ImapConfig",
    "ListenerConfig",
    "Mechanism",
    "OAuth2Config",
    "OutgoingConfig",
    "PrivacyConfig",
    "Security",
    "SessionConfig",
    "SmtpRelayConfig",
    "WorkersConfig",
    "load_config",
]
