"""The `qa-mailer` command: serve, demo, database, digests, status, and the organisers' queues."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from qa_mailer import __version__

# Only what `--help`, `--version` and shell completion need is imported here: click and the
# command modules, which import the rest of the service inside each command, so that a
# command loads what it uses and nothing else (`qa-mailer --help` in a tenth of a second
# instead of two thirds; tests/integration/test_startup.py checks what each one imports).
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from qa_mailer.config import Config

if TYPE_CHECKING:
    from qa_mailer.digest.deliver import RenderedDigest

T = TypeVar("T")

DEFAULT_CONFIG = "config.toml"
LOG_LEVELS = ("debug", "info", "warning", "error")


class Context:
    """What every subcommand needs: the config file, read on first use."""

    def __init__(self, config_path: Path):
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        from qa_mailer.config import load_config

        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


pass_context = click.make_pass_decorator(Context)


def run(
    work: Callable[[AsyncEngine], Awaitable[T]], config: Config, *, check_schema: bool = True
) -> T:
    """Run ``work`` with an engine on the configured database; turn known errors into messages."""
    from qa_mailer import eventloop
    from qa_mailer.config import ConfigError
    from qa_mailer.db.engine import DatabaseUnreachable, create_engine, reach
    from qa_mailer.db.revision import SchemaBehind, require_current
    from qa_mailer.errors import TemplateProblem

    async def main() -> T:
        engine = create_engine(config.database_url)
        try:
            await reach(engine)
            if check_schema:
                await require_current(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return eventloop.run(main())
    except (ConfigError, SchemaBehind, TemplateProblem) as exc:
        raise click.ClickException(str(exc)) from None
    except DatabaseUnreachable as exc:
        raise click.ClickException(f"{exc} (the [database] settings in {config.path})") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("QA_MAILER_CONFIG", DEFAULT_CONFIG),
    show_default="config.toml, or $QA_MAILER_CONFIG",
    help="The configuration file.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what every stage does (--log-level info).")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    help="Log at this level and above (default: info for serve and demo, warning otherwise).",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append the log to this file instead of writing it to stderr.",
)
@click.option(
    "--log-format",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="json: one JSON object per line (time, level, logger, message), for log collectors.",
)
@click.version_option(__version__, prog_name="qa-mailer")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: Path,
    verbose: bool,
    log_level: str | None,
    log_file: Path | None,
    log_format: str,
) -> None:
    """qa-mailer: participants ask by e-mail, the expert answers inline, organisers get digests."""
    import logging

    from qa_mailer.logs import configure_logging

    if log_level is not None:
        level = logging.getLevelName(log_level.upper())
    elif verbose or ctx.invoked_subcommand in {"serve", "demo"}:
        level = logging.INFO
    else:
        level = logging.WARNING
    try:
        configure_logging(level, log_file, json_lines=log_format == "json")
    except OSError as exc:
        raise click.BadParameter(
            f"cannot write to it: {exc.strerror}", param_hint="--log-file"
        ) from None
    ctx.obj = Context(config_path)


ROLES = ("intake", "process", "send", "schedule")


def _roles(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    roles = tuple(dict.fromkeys(r.strip() for r in value.split(",") if r.strip()))
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise click.BadParameter(
            f"{', '.join(unknown) or 'nothing'}: expected a comma-separated list of {', '.join(ROLES)}"
        )
    return roles


@main.command()
@click.option(
    "--roles",
    default=",".join(ROLES),
    show_default=True,
    callback=_roles,
    help="What this process does: intake (listener, IMAP), process, send, schedule (digests, "
    "batches). Run as many `serve` processes on one database as you like.",
)
@pass_context
def serve(context: Context, roles: tuple[str, ...]) -> None:
    """Run the service: take mail in, process it, send mail out, until SIGTERM or Ctrl-C."""
    import asyncio
    import signal

    from qa_mailer.app import GRACE_SECONDS, Service
    from qa_mailer.clock import SystemClock
    from qa_mailer.db import Role
    from qa_mailer.diagnose import SetupError
    from qa_mailer.ingest.smtp import ListenerError
    from qa_mailer.watchdog import STOP_MARGIN_SECONDS, StopDeadline, dump_stacks_on_request

    config = _config(context)

    async def work(engine: AsyncEngine) -> None:
        stop = asyncio.Event()
        deadline = StopDeadline(GRACE_SECONDS + STOP_MARGIN_SECONDS)

        def asked_to_stop() -> None:
            stop.set()
            deadline.start()

        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, asked_to_stop)
        dump_stacks_on_request(loop)
        service = Service(config, engine, clock=SystemClock(), roles=[Role(r) for r in roles])
        try:
            await service.run(stop, GRACE_SECONDS)
        finally:
            # A service that stopped by itself (a mistake in the settings) must end in time too.
            deadline.start()

    try:
        run(work, config)
    except ListenerError as exc:
        raise click.ClickException(str(exc)) from None
    except SetupError as exc:
        # A definite mistake in the settings: exit 78 (EX_CONFIG), which the systemd unit
        # does not restart on, so a wrong password is not retried every few seconds.
        raise SetupFailed(str(exc)) from None


class SetupFailed(click.ClickException):
    """A mistake in the settings that retrying cannot fix."""

    exit_code = 78


@main.command()
@pass_context
def check(context: Context) -> None:
    """Try every setting once (config, templates, roster, database, IMAP, relay); send nothing."""

    from qa_mailer import eventloop
    from qa_mailer.check import check_setup
    from qa_mailer.clock import SystemClock

    config = _config(context)
    verdicts = eventloop.run(check_setup(config, SystemClock()))
    for verdict in verdicts:
        click.echo(verdict.line())
    if not all(v.ok for v in verdicts):
        raise click.exceptions.Exit(1)


@main.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/demo"),
    show_default=True,
    help="Where the demo keeps its database and mail (emptied first).",
)
@pass_context
def demo(context: Context, folder: Path) -> None:
    """Play the whole story on the embedded defaults: questions in, answers and digest out."""

    from qa_mailer import eventloop
    from qa_mailer.config import ConfigError
    from qa_mailer.db.revision import SchemaBehind
    from qa_mailer.demo import run_demo

    config = _config(context)
    try:
        eventloop.run(run_demo(config, folder.resolve(), click.echo))
    except (ConfigError, SchemaBehind) as exc:
        raise click.ClickException(str(exc)) from None


@main.group()
def db() -> None:
    """Manage the database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@pass_context
def db_upgrade(context: Context, revision: str) -> None:
    """Bring the database up to REVISION (default: the newest)."""
    from qa_mailer.db import migrate

    config = _config(context)

    async def work(engine: AsyncEngine) -> str | None:
        await migrate.upgrade(engine, revision)
        return await migrate.current_revision(engine)

    click.echo(f"database at revision {run(work, config, check_schema=False)}")


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help='Do not ask before "base" removes every table.')
@pass_context
def db_downgrade(context: Context, revision: str, yes: bool) -> None:
    """Take the database down to REVISION ("base" removes every table, after asking)."""
    from qa_mailer.db import migrate
    from qa_mailer.db.engine import describe

    config = _config(context)
    if revision == "base" and not yes:
        click.confirm(
            f"This removes every table of {describe(config.database_url)}, with every "
            "question, answer and mail in it. Continue?",
            abort=True,
        )

    async def work(engine: AsyncEngine) -> str | None:
        await migrate.downgrade(engine, revision)
        return await migrate.current_revision(engine)

    click.echo(f"database at revision {run(work, config, check_schema=False)}")


@db.command("current")
@pass_context
def db_current(context: Context) -> None:
    """Print the database's revision and the newest one the code knows."""
    from qa_mailer.db import revision

    config = _config(context)
    current = run(revision.current_revision, config, check_schema=False)
    click.echo(f"database: {current or 'not initialised'}; code: {revision.head_revision()}")


@main.command()
@click.option("--session", "number", type=int, help="The session number (3 for VC3).")
@click.option(
    "--programme", is_flag=True, help="The report across every session and country instead."
)
@click.option("--send", is_flag=True, help="Also mail it to the organisers (through the outbox).")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML here.",
)
@click.option(
    "--list",
    "list_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the list of every question of the session here (CSV; zipped when the digest "
    "attaches it zipped).",
)
@pass_context
def digest(
    context: Context,
    number: int | None,
    programme: bool,
    send: bool,
    html_file: Path | None,
    list_file: Path | None,
) -> None:
    """Print a session's digest, or the programme report, for the organisers."""
    from qa_mailer.admin import make_digest, make_programme

    config = _config(context)
    if programme == (number is not None):
        raise click.UsageError("name a session with --session N, or use --programme")
    if number is not None and not any(s.number == number for s in config.sessions):
        known = ", ".join(str(s.number) for s in config.sessions)
        raise click.BadParameter(
            f"no session {number} in {config.path} (sessions: {known})", param_hint="--session"
        )
    if number is not None:
        rendered, report = run(
            lambda engine: make_digest(engine, config, number, send=send), config
        )
        text, html = rendered.text, rendered.html
        if list_file is not None:
            _write_question_list(config, rendered, list_file)
    else:
        if list_file is not None:
            raise click.UsageError("--list goes with --session N")
        report_of, report = run(lambda engine: make_programme(engine, config, send=send), config)
        text, html = report_of.text, report_of.html
    click.echo(text, nl=False)
    if html_file is not None:
        html_file.write_text(html, encoding="utf-8")
    if send:
        click.echo(
            f"{'report' if programme else 'digest'} to {', '.join(config.organisers)}: {report}",
            err=True,
        )


def _write_question_list(config: Config, rendered: RenderedDigest, path: Path) -> None:
    from qa_mailer.digest.deliver import question_list_of
    from qa_mailer.templates import Templates

    found = question_list_of(Templates.of(config), rendered, config.organiser_language)
    path.write_bytes(found.attachment.data)
    kind = "zipped CSV" if found.zipped else "CSV"
    click.echo(
        f"{path}: the list of {found.questions} questions ({kind}, {found.size} bytes)", err=True
    )


@main.command("send-batch")
@click.option(
    "--session", "number", type=int, help="Only this session (default: every batch-mode session)."
)
@pass_context
def send_batch(context: Context, number: int | None) -> None:
    """Send the questions waiting in batch mode to the experts now, one mail per session."""
    from qa_mailer.admin import send_batches

    config = _config(context)
    lines, report = run(lambda engine: send_batches(engine, config, number), config)
    click.echo("\n".join(lines) if lines else "no questions waiting for a batch")
    if report:
        click.echo(f"mail to the experts: {report}")


@main.command()
@pass_context
def status(context: Context) -> None:
    """Print per session and country: questions new, with the expert, answered, held; the backlogs."""
    from qa_mailer.status import status_text

    config = _config(context)
    click.echo(run(lambda engine: status_text(engine, config), config))


@main.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@pass_context
def ingest(context: Context, files: tuple[Path, ...]) -> None:
    """Store .eml FILES as received mail; `serve` processes them (within 30 s if it runs)."""
    from qa_mailer.admin import ingest_files

    config = _config(context)
    for line in run(lambda engine: ingest_files(engine, files), config):
        click.echo(line)


@main.group()
def auth() -> None:
    """OAuth2 sign-in for the mailbox and the relay (Microsoft 365, Google, any provider)."""


@auth.command("login")
@click.option(
    "--browser",
    is_flag=True,
    help="Sign in on the provider's page (code flow with PKCE; Google needs it).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="With --browser: the loopback port for the redirect (0: any free one).",
)
@pass_context
def auth_login(context: Context, browser: bool, port: int) -> None:
    """Sign in once (device code, or --browser); store the grant in oauth2.token_file."""

    from qa_mailer import eventloop
    from qa_mailer.config import ConfigError
    from qa_mailer.diagnose import Misconfigured
    from qa_mailer.oauth2 import TokenEndpointError, device_login
    from qa_mailer.oauth2_browser import browser_login

    config = _config(context)
    grants = [c.oauth2 for c in (config.imap, config.smtp) if c is not None and c.oauth2]
    if not grants:
        raise click.ClickException(
            f'{config.path}: neither imap.auth nor smtp.auth is "oauth2"; nothing to sign in to'
        )
    try:
        if browser:
            eventloop.run(browser_login(grants[0], click.echo, port=port))
        else:
            eventloop.run(device_login(grants[0], click.echo))
    except (Misconfigured, TokenEndpointError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None


def _config(context: Context) -> Config:
    from qa_mailer.config import ConfigError

    try:
        return context.config
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def register(*commands: Any) -> None:
    for command in commands:
        main.add_command(command)


# The organisers' queues and the reply parser live in their own module to keep this one short.
from qa_mailer.cli_outbox import ignored, outbox, participants  # noqa: E402
from qa_mailer.cli_questions import export_command, questions, roster  # noqa: E402
from qa_mailer.cli_queues import held, parse_reply_command, quarantine  # noqa: E402

register(
    quarantine,
    held,
    parse_reply_command,
    questions,
    roster,
    export_command,
    ignored,
    outbox,
    participants,
)
