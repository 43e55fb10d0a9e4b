"""The Jinja2 templates of every mail and digest, per language; an organiser's folder overrides any.

``templates/<name>`` is English; ``templates/<language>/<name>`` the same mail in another
language (``ru``, ``sr`` in Cyrillic, ``sr-Latn``, ...). A mail in language L is rendered from
the first of: the override folder's ``L/<name>``, the shipped ``L/<name>``, the override's
``<name>``, the shipped ``<name>``. A template may set its subject with
``{% set subject %}...{% endset %}``; the words of a mail live in its template, not in Python.
"""

from __future__ import annotations

import functools
import logging
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from qa_mailer.config import Config
from qa_mailer.errors import TemplateProblem as TemplateProblem
from qa_mailer.resources import templates_dir

log = logging.getLogger("qa_mailer.templates")

DEFAULT_LANGUAGE = "en"
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class RenderedMail:
    """A mail's words: its subject (None when the template sets none) and its text."""

    subject: str | None
    text: str


# What rendering a template can raise: its own errors, and a filter's or an expression's.
RENDER_ERRORS = (TemplateError, ArithmeticError, LookupError, TypeError, ValueError)


class Templates:
    """Renders mails and digests; a missing variable is an error, not an empty string."""

    def __init__(
        self, override: Path | None = None, timezone: ZoneInfo = _UTC, *, fallback: bool = True
    ):
        folders = [override] if override is not None else []
        folders.append(templates_dir())
        self.override = override
        self.timezone = timezone
        # False for the start-up check: an override's error is reported, not covered up.
        self.fallback = fallback
        names = _language_names([templates_dir(), *([override] if override else [])])
        self._environment = _environment(folders, self.timezone, names)
        # The shipped templates alone: what a mail falls back to when an override fails.
        self._shipped = _environment([templates_dir()], self.timezone, names)

    @classmethod
    def of(cls, config: Config) -> Templates:
        """The templates a service with ``config`` renders: its override folder, its time zone."""
        return cls(config.templates, config.timezone)

    def render(self, name: str, language: str = DEFAULT_LANGUAGE, **context: Any) -> str:
        """The text of template ``name`` in ``language`` (or the nearest there is)."""
        return self.render_mail(name, language, **context).text

    def render_mail(
        self, name: str, language: str = DEFAULT_LANGUAGE, **context: Any
    ) -> RenderedMail:
        """Subject and text of template ``name`` in ``language``.

        An override that fails while the service runs (a variable it does not have, a filter
        that raises) is logged and the shipped template is used instead: a mistake in an
        organiser's template must not stop questions being acknowledged or answered.
        """
        try:
            return _render(self._environment, name, language, context)
        except RENDER_ERRORS as exc:
            if self.override is None or not self.fallback:
                raise
            log.error(
                "template %s (%s) failed, the shipped one is used instead: %s",
                name,
                language,
                describe(exc),
            )
            return _render(self._shipped, name, language, context)

    def source_of(self, name: str, language: str = DEFAULT_LANGUAGE) -> str:
        """The file a mail in ``language`` is rendered from (for messages and checks)."""
        template = _select(self._environment, name, language)
        return template.filename or template.name or name

    def languages(self) -> list[str]:
        """Every language some template is written in, English first."""
        found = {DEFAULT_LANGUAGE}
        for name in self._environment.list_templates():
            folder, _, _ = name.rpartition("/")
            if folder and "/" not in folder:
                found.add(folder)
        return [DEFAULT_LANGUAGE, *sorted(found - {DEFAULT_LANGUAGE})]


def _language_names(folders: list[Path]) -> dict[str, dict[str, str]]:
    """names.toml of each folder, later folders winning: {mail language: {code: name}}."""
    names: dict[str, dict[str, str]] = {}
    for folder in folders:
        path = folder / "names.toml"
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise TemplateProblem(f"{path}: not readable TOML: {exc}") from None
        for language, table in data.items():
            if isinstance(table, dict):
                names.setdefault(language, {}).update({k: str(v) for k, v in table.items()})
    return names


def _environment(
    folders: list[Path], timezone: ZoneInfo, names: dict[str, dict[str, str]]
) -> Environment:
    environment = Environment(
        loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates are read once: a running service does not look for edits on every mail.
        auto_reload=False,
    )
    environment.filters["quote"] = quote
    environment.filters["md_cell"] = md_cell
    environment.filters["duration"] = duration
    environment.filters["plural"] = plural
    environment.filters["moment"] = lambda value: moment(value, timezone)

    @pass_context
    def language_name(context: Context, code: str) -> str:
        """A language's name in the mail's own language (names.toml), else in English."""
        language = str(context.get("language", DEFAULT_LANGUAGE))
        for table in (names.get(language, {}), names.get(DEFAULT_LANGUAGE, {})):
            if code in table:
                return table[code]
        return code

    environment.filters["language_name"] = language_name
    return environment


def _select(environment: Environment, name: str, language: str) -> Template:
    names = [name] if language == DEFAULT_LANGUAGE else [f"{language}/{name}", name]
    return environment.select_template(names)


def _render(
    environment: Environment, name: str, language: str, context: dict[str, Any]
) -> RenderedMail:
    template = _select(environment, name, language)
    # The globals are merged in here and the context "shared", which is what make_module does
    # without it, except that Jinja2 would copy its ChainMap of globals on every render.
    module = template.make_module(
        {**_globals_of(template), **context, "language": language}, shared=True
    )
    subject = getattr(module, "subject", None)
    return RenderedMail(
        subject=" ".join(str(subject).split()) if subject is not None else None,
        text=str(module),
    )


@functools.lru_cache(maxsize=256)
def _globals_of(template: Template) -> dict[str, Any]:
    # A template's globals (the environment's, and its own) are set when it is loaded.
    return dict(template.globals)


def describe(exc: Exception) -> str:
    """A template error as "file:line: message", as far as Jinja2 knows them."""
    if isinstance(exc, TemplateSyntaxError):
        where = exc.filename or exc.name or "template"
        return f"{where}:{exc.lineno}: {exc.message}"
    # A runtime error's line is in its traceback, in the frame of the template's compiled
    # code, which maps its own line numbers back to the template's (as Jinja2's own traceback
    # rewriting does; make_module does not rewrite).
    traceback = exc.__traceback__
    where = ""
    while traceback is not None:
        template = traceback.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            line = template.get_corresponding_lineno(traceback.tb_lineno)
            where = f"{template.filename or template.name}:{line}: "
        traceback = traceback.tb_next
    return f"{where}{exc}"


def quote(text: str) -> str:
    """Prefix every line with "> ", as a mail client quotes."""
    return "\n".join(f"> {line}" if line else ">" for line in text.strip("\n").split("\n"))


def md_cell(text: str) -> str:
    """Text for a cell of a Markdown table: a | escaped, line breaks as <br>."""
    return "<br>".join(text.replace("|", "\\|").splitlines())


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


def moment(value: datetime | None, timezone: ZoneInfo) -> str:
    """A time for people in the programme's time zone: "2026-12-10 15:35 CET"."""
    if value is None:
        return "-"
    local = value.astimezone(timezone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


# Plural categories by language (CLDR): "one" and "other" for most; the East and South Slavic
# languages tell "few" (2-4, not 12-14) from "many".
_SLAVIC = {"ru", "sr", "sr-Latn", "hr", "bs", "uk"}


@pass_context
def plural(context: Context, count: int, *forms: str) -> str:
    """The form of a word that goes with ``count`` in the mail's language.

    ``{{ n | plural("question", "questions") }}``; Russian, Serbian and Croatian take three
    forms: ``{{ n | plural("вопрос", "вопроса", "вопросов") }}`` (one, few, many).
    """
    if not forms:
        raise TemplateError("plural needs at least one form")
    language = str(context.get("language", DEFAULT_LANGUAGE))
    if language in _SLAVIC and len(forms) >= 3:
        if count % 10 == 1 and count % 100 != 11:
            return forms[0]
        if 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14:
            return forms[1]
        return forms[2]
    return forms[0] if count == 1 else forms[min(1, len(forms) - 1)]
