#!/bin/sh
# The container's command: `serve` first brings the database to the newest migration (as the
# systemd unit's ExecStartPre does); any other qa-mailer command runs as given.
# The config is $QA_MAILER_CONFIG (/srv/qa-mailer/config.toml in the image).
set -eu
if [ "${1:-serve}" = serve ]; then
    qa-mailer db upgrade
    exec qa-mailer "$@"
fi
exec qa-mailer "$@"
