"""What each command imports: `--help` click alone, everyday commands not Alembic or the parsers.

Every command runs in a fresh interpreter with `-X importtime`, which lists every module as
it is imported; the tests assert on that list, not on time (bench/bench_startup.py measures).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import write_config

# Loaded by no command that only prints help, its version or completions.
DATABASE_AND_MAIL = (
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "jinja2",
    "mailparser",
    "lxml",
    "aiosmtplib",
    "aioimaplib",
    "aiosmtpd",
    "qa_mailer.parse",
    "qa_mailer.replies",
    "qa_mailer.answer",
    "qa_mailer.templates",
    "qa_mailer.config",
)
# Loaded by no command that only reads the database (Alembic is for `db` commands).
UNUSED_BY_READERS = (
    "alembic",
    "jinja2",
    "mailparser",
    "lxml",
    "aiosmtplib",
    "qa_mailer.parse",
    "qa_mailer.replies",
    "qa_mailer.answer",
    "qa_mailer.templates",
)


def run_command(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> tuple[int, str, set[str]]:
    """Run `python -m qa_mailer ARGS` in a fresh interpreter: exit code, output, modules loaded."""
    return _run([sys.executable, "-X", "importtime", "-m", "qa_mailer", *args], cwd, env)


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None) -> tuple[int, str, set[str]]:
    environment = {k: v for k, v in os.environ.items() if k != "QA_MAILER_CONFIG"}
    environment.update(env or {})
    done = subprocess.run(
        argv, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )
    modules = set()
    errors = []
    for line in done.stderr.splitlines():
        # "import time: self [us] | cumulative | imported package", the name indented by depth.
        if line.startswith("import time:") and "|" in line:
            modules.add(line.rsplit("|", 1)[1].strip())
        else:
            errors.append(line)
    return done.returncode, done.stdout + "\n".join(errors), modules


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The names (packages, with any module inside them) found among ``modules``."""
    return sorted(
        name
        for name in names
        if any(module == name or module.startswith(name + ".") for module in modules)
    )


COMMANDS = (
    "serve",
    "check",
    "demo",
    "db",
    "digest",
    "send-batch",
    "status",
    "ingest",
    "auth",
    "quarantine",
    "held",
    "parse-reply",
    "questions",
    "roster",
    "export",
    "ignored",
    "outbox",
    "participants",
)


def test_help_loads_click_alone_and_lists_every_command(tmp_path: Path) -> None:
    code, output, modules = run_command("--help", cwd=tmp_path)
    assert code == 0
    assert "click" in modules
    assert loaded(modules, DATABASE_AND_MAIL) == []
    for command in COMMANDS:
        line = next(
            (line for line in output.splitlines() if line.startswith(f"  {command} ")), None
        )
        assert line is not None, f"{command} missing from --help"
        # Each command's short help is on its line.
        assert len(line.split(maxsplit=1)[1]) > 10, line


def test_version_loads_click_alone(tmp_path: Path) -> None:
    from qa_mailer import __version__

    code, output, modules = run_command("--version", cwd=tmp_path)
    assert code == 0 and output.strip() == f"qa-mailer, version {__version__}"
    assert loaded(modules, DATABASE_AND_MAIL) == []
    # The version is qa_mailer.__version__ (pyproject.toml reads it from there too), not the
    # installed metadata, whose reader costs as much as the rest of --version.
    assert loaded(modules, ("importlib.metadata",)) == []


@pytest.mark.parametrize(
    "args",
    [
        ("status", "--help"),
        ("db", "--help"),
        ("db", "upgrade", "--help"),
        ("questions", "list", "--help"),
        ("outbox", "list", "--help"),
        ("held", "approve", "--help"),
        ("parse-reply", "--help"),
        ("digest", "--help"),
    ],
)
def test_a_commands_help_loads_no_database_or_mail_code(tmp_path: Path, args: tuple[str]) -> None:
    code, output, modules = run_command(*args, cwd=tmp_path)
    assert code == 0 and "Usage: " in output
    assert loaded(modules, DATABASE_AND_MAIL) == []


def test_shell_completion_works_and_loads_no_database_or_mail_code(tmp_path: Path) -> None:
    # The command as the README's `eval "$(_QA_MAILER_COMPLETE=bash_source qa-mailer)"` runs it.
    script = Path(sys.executable).parent / "qa-mailer"
    assert script.is_file(), f"{script}: the qa-mailer command is not installed"
    code, output, _ = _run([str(script)], tmp_path, {"_QA_MAILER_COMPLETE": "bash_source"})
    assert code == 0 and "_qa_mailer_completion" in output

    def complete(words: str) -> tuple[list[str], set[str]]:
        env = {
            "_QA_MAILER_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
            "PYTHONPROFILEIMPORTTIME": "1",
        }
        code, output, modules = _run([str(script)], tmp_path, env)
        assert code == 0, output
        return [line.split(",", 1)[1] for line in output.splitlines() if "," in line], modules

    words, modules = complete("qa-mailer q")
    assert sorted(words) == ["quarantine", "questions"]
    assert loaded(modules, DATABASE_AND_MAIL) == []
    words, _ = complete("qa-mailer outbox list --state ")
    assert words == ["queued", "sending", "sent", "failed"]
    words, _ = complete("qa-mailer questions list --state ")
    assert words == ["new", "with_expert", "answered", "closed", "merged"]


def test_everyday_commands_read_the_database_without_alembic_or_the_parsers(
    tmp_path: Path, migrated_url: str
) -> None:
    config = write_config(tmp_path / "config", migrated_url)
    for args in (
        ("status",),
        ("questions", "list"),
        ("outbox", "list"),
        ("held", "list"),
        ("quarantine", "list"),
        ("ignored", "list"),
        ("roster", "reload"),
        ("db", "current"),
    ):
        code, output, modules = run_command("--config", str(config.path), *args, cwd=tmp_path)
        assert code == 0, f"{args}: {output}"
        assert "sqlalchemy" in modules, args
        assert loaded(modules, UNUSED_BY_READERS) == [], args


def test_the_digest_renders_mail_without_the_parsers(tmp_path: Path, migrated_url: str) -> None:
    config = write_config(tmp_path / "config", migrated_url)
    for args in (("digest", "--session", "1"), ("digest", "--programme")):
        code, output, modules = run_command("--config", str(config.path), *args, cwd=tmp_path)
        assert code == 0, f"{args}: {output}"
        assert loaded(modules, ("jinja2",)) == ["jinja2"], args
        parsers = ("alembic", "mailparser", "lxml", "qa_mailer.parse", "qa_mailer.replies")
        assert loaded(modules, parsers) == [], args


def test_a_database_behind_is_refused_without_alembic(tmp_path: Path, empty_database: str) -> None:
    config = write_config(tmp_path / "config", empty_database)
    code, output, modules = run_command("--config", str(config.path), "status", cwd=tmp_path)
    assert code == 1 and "has no tables yet: run `qa-mailer db upgrade`" in output
    assert loaded(modules, ("alembic",)) == []
    # `db upgrade` is the command that needs Alembic, and does load it.
    code, output, modules = run_command("--config", str(config.path), "db", "upgrade", cwd=tmp_path)
    assert code == 0 and "database at revision" in output
    assert loaded(modules, ("alembic",)) == ["alembic"]
    code, output, modules = run_command("--config", str(config.path), "status", cwd=tmp_path)
    assert code == 0, output
    assert loaded(modules, ("alembic",)) == []


def test_the_reply_parser_loads_where_replies_are_read(tmp_path: Path) -> None:
    reply = tmp_path / "reply.txt"
    reply.write_text("1. Clusters start with a shared need.\n\n> [Q-1] How do clusters start?\n")
    code, output, modules = run_command("parse-reply", str(reply), cwd=tmp_path)
    assert code == 0 and "Clusters start with a shared need." in output
    assert loaded(modules, ("qa_mailer.replies",)) == ["qa_mailer.replies"]
    assert loaded(modules, ("sqlalchemy", "alembic")) == []
