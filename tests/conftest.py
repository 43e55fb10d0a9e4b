"""Fixtures for real servers: Dovecot, aiosmtpd sinks, SQLite and PostgreSQL databases.

A server that is missing fails the tests that need it, loudly; nothing is skipped. With
QA_MAILER_REQUIRE_SERVERS=1 (set by scripts/test.sh) a skipped test counts as a failure, and the
run fails unless tests against Dovecot and PostgreSQL actually passed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import migrate
from qa_mailer.db.engine import create_engine
from tests.servers.dovecot import DovecotServer, ImapUser
from tests.servers.smtp_sink import SmtpSink

REQUIRE_SERVERS = os.environ.get("QA_MAILER_REQUIRE_SERVERS") == "1"
POSTGRES_ADMIN = os.environ.get(
    "QA_MAILER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
_passed_by_marker: dict[str, int] = {"dovecot": 0, "postgres": 0}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "dovecot" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.dovecot)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if REQUIRE_SERVERS and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, which QA_MAILER_REQUIRE_SERVERS=1 forbids: {report.longrepr}"
    if report.when == "call" and report.passed:
        for marker in _passed_by_marker:
            if item.get_closest_marker(marker) is not None:
                _passed_by_marker[marker] += 1
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not REQUIRE_SERVERS or session.config.option.collectonly:
        return
    missing = [name for name, count in _passed_by_marker.items() if count == 0]
    if missing:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"FAILED: no test against {' or '.join(missing)} passed", red=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = ", ".join(f"{count} against {name}" for name, count in _passed_by_marker.items())
    terminalreporter.write_line(f"real-server tests passed: {counts}")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    server = DovecotServer.start_new()
    yield server
    server.stop()


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> ImapUser:
    return dovecot.add_user()


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    async def probe() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise RuntimeError(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN} ({exc}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, "
            "or point QA_MAILER_TEST_POSTGRES at one"
        ) from exc
    return POSTGRES_ADMIN


async def _admin(postgres_admin: str, *statements: str) -> None:
    connection = await asyncpg.connect(postgres_admin, timeout=5)
    try:
        for sql in statements:
            await connection.execute(sql)
    finally:
        await connection.close()


def _asyncpg_url(postgres_admin: str, name: str) -> str:
    base = postgres_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


@pytest.fixture
def postgres_url(postgres_admin: str) -> Iterator[str]:
    """The URL of a PostgreSQL database for one test, dropped afterwards.

    The database is created by whichever fixture the test asks for: ``empty_database`` or
    ``migrated_url`` (which copies a migrated template, far faster than migrating).
    """
    name = f"qa_test_{uuid.uuid4().hex[:12]}"
    yield _asyncpg_url(postgres_admin, name)
    asyncio.run(_admin(postgres_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _migrated(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def migrated_templates(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """Databases brought to the newest migration once per run, copied for each test.

    Running every migration for every test costs a second or more on SQLite (batch mode
    copies tables); the migrations themselves are tested in test_migrations.py.
    """
    templates: dict[str, str] = {}
    yield templates
    if "postgresql" in templates:
        asyncio.run(
            _admin(
                POSTGRES_ADMIN, f'DROP DATABASE IF EXISTS "{templates["postgresql"]}" WITH (FORCE)'
            )
        )


def _sqlite_template(templates: dict[str, str], folder: Path) -> Path:
    if "sqlite" not in templates:
        path = folder / "template.db"
        asyncio.run(_migrated(f"sqlite+aiosqlite:///{path}"))
        templates["sqlite"] = str(path)
    return Path(templates["sqlite"])


def _postgres_template(templates: dict[str, str], admin: str) -> str:
    if "postgresql" not in templates:
        name = f"qa_template_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        asyncio.run(_migrated(_asyncpg_url(admin, name)))
        templates["postgresql"] = name
    return templates["postgresql"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'qa-mailer.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'qa-mailer.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def migrated_url(
    database_url: str,
    migrated_templates: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """``database_url``, holding an empty database at the newest migration."""
    if database_url.startswith("sqlite"):
        template = _sqlite_template(migrated_templates, tmp_path_factory.mktemp("template"))
        shutil.copyfile(template, database_url.removeprefix("sqlite+aiosqlite:///"))
        return database_url
    template = _postgres_template(migrated_templates, POSTGRES_ADMIN)
    name = database_url.rsplit("/", 1)[1]
    asyncio.run(_admin(POSTGRES_ADMIN, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return database_url


@pytest.fixture
def empty_database(database_url: str) -> str:
    """``database_url``, holding an empty database (no tables)."""
    if database_url.startswith("postgresql"):
        name = database_url.rsplit("/", 1)[1]
        asyncio.run(_admin(POSTGRES_ADMIN, f'CREATE DATABASE "{name}"'))
    return database_url


@pytest_asyncio.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database brought to the newest migration."""
    engine = create_engine(migrated_url)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    loop = asyncio.get_running_loop()
    sink.server = await loop.create_server(lambda: SMTP(sink, loop=loop), "127.0.0.1", 0)
    sink.port = int(sink.server.sockets[0].getsockname()[1])
    yield sink
    sink.server.close()
    await sink.server.wait_closed()
