"""Where the shipped migrations and templates are: the source tree, or inside an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PACKAGE.parent / name, _PACKAGE / "_bundled" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the {name}/ folder is missing from the installation ({_PACKAGE})")


def migrations_dir() -> Path:
    """The Alembic script folder."""
    return _find("migrations")


def templates_dir() -> Path:
    """The folder of the shipped Jinja2 templates."""
    return _find("templates")
