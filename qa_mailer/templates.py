"""The Jinja2 templates of every mail and digest; an organiser's folder can override any one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from qa_mailer.resources import templates_dir


class Templates:
    """Renders ``templates/<name>``; a missing variable is an error, not an empty string."""

    def __init__(self, override: Path | None = None):
        folders = [override] if override is not None else []
        folders.append(templates_dir())
        self._environment = Environment(
            loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates are read once: a running service does not look for edits on every mail.
            auto_reload=False,
        )
        self._environment.filters["quote"] = quote
        self._environment.filters["duration"] = duration

    def render(self, name: str, **context: Any) -> str:
        return self._environment.get_template(name).render(**context)


def quote(text: str) -> str:
    """Prefix every line with "> ", as a mail client quotes."""
    return "\n".join(f"> {line}" if line else ">" for line in text.strip("\n").split("\n"))


def duration(seconds: float | None) -> str:
    """A waiting time for people: "3 d 4 h", "2 h 5 min", "12 min", or "-"."""
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"
