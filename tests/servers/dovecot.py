"""A private Dovecot IMAP server: own config, passwd-file users, Maildir in a temp folder.

Dovecot refuses to run mail processes as root, so virtual users map to uid/gid 65534; the
folders they write are owned by that uid. One server serves a whole test session (stopping one
takes seconds); each test gets its own user, so tests do not see each other's mail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from qa_mailer.config import ImapConfig
from tests.helpers import wait_until
from tests.servers.certs import make_certificate
from tests.servers.ports import free_port

NOBODY = 65534
USER_POOL = 300


class DovecotMissing(RuntimeError):
    """Dovecot is not installed: the test command installs it (scripts/test.sh)."""


@dataclass(frozen=True)
class ImapUser:
    name: str
    password: str


class DovecotServer:
    def __init__(self, root: Path, introspection_url: str | None = None):
        self.root = root
        # With an OAuth2 token-introspection URL, XOAUTH2 and OAUTHBEARER logins are checked
        # there (Dovecot's oauth2 passdb); passwords keep working for the passwd-file users.
        self.introspection_url = introspection_url
        self.port = free_port()
        self.tls_port = free_port()
        self.config_file = root / "dovecot.conf"
        self.users_file = root / "users"
        self.cert = root / "cert.pem"
        self.key = root / "key.pem"
        self._process: subprocess.Popen[bytes] | None = None
        self._users: list[ImapUser] = []

    @classmethod
    def start_new(cls, introspection_url: str | None = None) -> DovecotServer:
        if shutil.which("dovecot") is None:
            raise DovecotMissing(
                "dovecot is not installed; run scripts/test.sh, which installs dovecot-imapd"
            )
        root = Path(tempfile.mkdtemp(prefix="qa-dovecot-"))
        # Dovecot's unprivileged login and mail processes must be able to walk into the folder.
        root.chmod(0o755)
        server = cls(root, introspection_url)
        server._write_files()
        server._start()
        return server

    def _write_files(self) -> None:
        (self.root / "home").mkdir()
        os.chown(self.root / "home", NOBODY, NOBODY)
        # Dovecot rereads the passwd-file when it changes, but not reliably when it changes
        # twice within a second; every user is written once, before the server starts.
        self._users = [
            ImapUser(f"user{n:04d}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex)
            for n in range(USER_POOL)
        ]
        self.users_file.write_text(
            "".join(f"{u.name}:{{PLAIN}}{u.password}\n" for u in self._users)
        )
        make_certificate(self.root)
        mechanisms, oauth2 = "plain login", ""
        if self.introspection_url is not None:
            mechanisms += " xoauth2 oauthbearer"
            settings = self.root / "oauth2.conf.ext"
            settings.write_text(
                f"introspection_mode = post\nintrospection_url = {self.introspection_url}\n"
                "username_attribute = username\nactive_attribute = active\n"
                "active_value = true\n"
            )
            oauth2 = (
                f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {settings}\n}}\n"
            )
        self.config_file.write_text(
            f"""
instance_name = qa-test-{uuid.uuid4().hex[:8]}
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
mail_fsync = never
mail_location = maildir:~/Maildir
{oauth2}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.users_file}
}}
userdb {{
  driver = static
  args = uid={NOBODY} gid={NOBODY} home={self.root}/home/%u
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
"""
        )

    def _start(self) -> None:
        self._process = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"dovecot exited at start: {error}\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"dovecot did not listen on {self.port}\n{self.log()}")

    def add_user(self) -> ImapUser:
        """A mailbox user no other test has used."""
        if not self._users:
            raise RuntimeError(f"all {USER_POOL} test users are used; raise USER_POOL")
        return self._users.pop(0)

    def maildir(self, user: ImapUser, folder: str = "INBOX") -> Path:
        base = self.root / "home" / user.name / "Maildir"
        return base if folder == "INBOX" else base / f".{folder}"

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def logged(self, *words: str, count: int = 1) -> list[str]:
        """The log's lines holding all ``words``, once there are ``count`` of them.

        Dovecot's processes write their lines through its log process, a moment after the
        event: a test that reads the log at once can miss the line.
        """

        async def lines() -> list[str]:
            found = [line for line in self.log().splitlines() if all(w in line for w in words)]
            return found if len(found) >= count else []

        return await wait_until(lines, what=f"{count} line(s) with {words} in Dovecot's log")

    def shut_down(self) -> None:
        """Stop serving, as a server restart does, keeping the mail and the settings.

        Stopping Dovecot's master leaves its imap processes serving the sessions they have
        (measured: IDLE and NOOP still answered). A service manager stops them all, as here:
        each then says BYE and closes its connection.
        """
        children = self._children()
        if self._process is not None and self._process.poll() is None:
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()

    def _children(self) -> list[int]:
        if self._process is None or self._process.poll() is not None:
            return []
        listed = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self._process.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(pid) for pid in listed.stdout.split()]

    def start_again(self) -> None:
        """Serve again after ``shut_down``, on the same ports with the same mailboxes."""
        self._start()

    def stop(self) -> None:
        self.shut_down()
        shutil.rmtree(self.root, ignore_errors=True)


def doveadm(server: DovecotServer, *args: str) -> str:
    """Run a doveadm command against this server (it must be running)."""
    result = subprocess.run(
        ["doveadm", "-c", str(server.config_file), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout


def imap_config_for(server: DovecotServer, user: ImapUser, **changes: object) -> ImapConfig:
    """The poller's settings for ``user`` of ``server`` (plain IMAP), ``changes`` applied.

    The password is read from $QA_TEST_IMAP_PASSWORD unless ``password_env`` says otherwise.
    """
    settings: dict[str, object] = dict(
        host="127.0.0.1",
        port=server.port,
        security="none",
        username=user.name,
        password_env="QA_TEST_IMAP_PASSWORD",
        mailbox="INBOX",
        processed="folder",
        processed_folder="Processed",
        processed_keyword="$QaMailerStored",
        use_idle=True,
        idle_renew_seconds=60,
        poll_seconds=0.2,
        timeout_seconds=10,
        fetch_batch=4,
        ca_file=None,
    )
    settings.update(changes)
    return ImapConfig(**settings)  # type: ignore[arg-type]
