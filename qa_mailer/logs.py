"""How the service logs: one format, and the libraries kept quiet unless something fails."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
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


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors (journald, Loki, Elasticsearch)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: int, file: Path | None = None, json_lines: bool = False) -> None:
    """Log at ``level`` to stderr, or appending to ``file``, as text or as JSON lines: the
    service's own stages, and the libraries' warnings. Raises OSError when the file cannot be
    opened."""
    handler: logging.Handler = (
        logging.FileHandler(file, encoding="utf-8") if file is not None else logging.StreamHandler()
    )
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(FORMAT))
    # Like logging.basicConfig: nothing changes when the root logger has handlers already
    # (a test runner's), so a command run inside one process twice does not log twice.
    root = logging.getLogger()
    if root.handlers:
        handler.close()
    else:
        root.addHandler(handler)
        root.setLevel(level)
    quiet_libraries()
