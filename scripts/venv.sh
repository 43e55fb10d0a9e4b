# Sourced by try.sh and test.sh: make .venv with Python 3.11+ and install qa-mailer into it.
# Usage: install_venv [extra]   (extra: "test" installs the test tools too)

install_venv() {
  local python=${PYTHON:-python3}
  if ! command -v "$python" >/dev/null 2>&1; then
    echo "qa-mailer needs Python 3.11 or newer; $python is not installed" >&2
    return 1
  fi
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "qa-mailer needs Python 3.11 or newer; $python is $("$python" --version 2>&1)" >&2
    return 1
  fi
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv >/dev/null 2>&1; then
      rm -rf .venv
      # Debian ships venv support in a separate package.
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        local version
        version=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${version}-venv" >/dev/null
        "$python" -m venv .venv
      else
        echo "cannot create a virtual environment: install python3-venv (apt-get install python3-venv)" >&2
        return 1
      fi
    fi
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
  if [ "${1:-}" = test ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
  else
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
  fi
}
