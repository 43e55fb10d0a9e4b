"""How the service logs: one format, and the libraries kept quiet unless something fails."""

from __future__ import annotations

import logging
from pathlib import Path

# Library chatter is not the service's business unless something fails. Some of it would also
# carry secrets: aiosmtpd logs every RCPT address (a reply token rides in the plus address)
# aioimaplib logs every line it reads at DEBUG (whole mails, with their Reply-To), and
# aiosqlite logs every statement with its parameters at DEBUG (tokens among them).
LIBRARIES = (
    "aiosmtpd",
    "mail.log",
    "aioimaplib",
    "aiosmtplib",
    "aiosqlite",
    "asyncpg",
    "alembic",
    "sqlalchemy",
)

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def quiet_libraries() -> None:
    """Keep the libraries' loggers at WARNING, whatever level the service logs at."""
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(level: int, file: Path | None = None) -> None:
    """Log at ``level`` to stderr, or appending to ``file``: the service's own stages, and the
    libraries' warnings. Raises OSError when the file cannot be opened."""
    if file is None:
        logging.basicConfig(level=level, format=FORMAT)
    else:
        logging.basicConfig(level=level, format=FORMAT, filename=file, encoding="utf-8")
    quiet_libraries()
