#!/usr/bin/env bash
# The README's second command: install what the tests need (Dovecot from Debian's packages,
# the Python dependencies) and run the whole suite: lint, types, and every test against real
# Dovecot, aiosmtpd, SQLite and PostgreSQL servers. A missing server fails the run; nothing is
# skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "scripts/test.sh: $1 needs root (Dovecot runs its test users as uid 65534)" >&2
    exit 1
  fi
}

if ! command -v dovecot >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  need_root "installing dovecot-imapd"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd openssl >/dev/null
fi
# Headless Chromium draws the programme report in tests/e2e/test_programme_rendering.py.
if ! command -v chromium >/dev/null 2>&1; then
  need_root "installing chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
need_root "running the Dovecot tests"

. scripts/venv.sh
install_venv test

# PostgreSQL must answer at 127.0.0.1:5432 (or $QA_MAILER_TEST_POSTGRES); start the local
# cluster if it is installed but down.
postgres_up() {
  .venv/bin/python - <<'PY'
import asyncio, os, sys
import asyncpg
url = os.environ.get("QA_MAILER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
async def probe():
    connection = await asyncpg.connect(url, timeout=5)
    await connection.close()
try:
    asyncio.run(probe())
except Exception as exc:
    print(f"PostgreSQL not reachable at {url}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}
if ! postgres_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    sleep 2
  fi
  postgres_up || { echo "scripts/test.sh: the tests need PostgreSQL; see the README" >&2; exit 1; }
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
QA_MAILER_REQUIRE_SERVERS=1 .venv/bin/python -m pytest "$@"
