#!/usr/bin/env bash
# The README's first command: install qa-mailer and run it on its embedded defaults (a SQLite
# file, an SMTP listener on 127.0.0.1:8025, outgoing mail in var/outbox/). The demo plays the
# whole story first; then the service runs until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
install_venv
.venv/bin/qa-mailer db upgrade
.venv/bin/qa-mailer --log-file var/demo.log demo
echo "(the demo's log is in var/demo.log)"
echo
echo "Now serving on the embedded defaults. Send a question with any SMTP client, e.g.:"
echo "  .venv/bin/python -c \"import smtplib; smtplib.SMTP('127.0.0.1', 8025).sendmail('you@firm.example.bg', ['qa@clusters.example.org'], b'From: You <you@firm.example.bg>\\r\\nTo: qa@clusters.example.org\\r\\nSubject: [VC1] My question\\r\\n\\r\\nHow do clusters start?\\r\\n')\""
echo "and read the acknowledgement and the expert's copy in var/outbox/new/. Ctrl-C stops."
exec .venv/bin/qa-mailer serve
