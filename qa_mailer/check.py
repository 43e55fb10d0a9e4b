"""`qa-mailer check`: every setting the service depends on, tried once, each with its verdict.

The configuration, templates, roster and database are checked as `serve` checks them at
start. The mailbox is logged into once (a wrong password is not tried again: a provider may
lock an account that fails repeatedly), its folder selected and its IDLE and MOVE support
read. The relay is connected to, secured and logged into, and nothing is sent. A failure
names its cause and the key to change (see diagnose.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import aioimaplib

from qa_mailer.classify.roster import load_roster
from qa_mailer.clock import Clock
from qa_mailer.config import Config, ConfigError
from qa_mailer.db import revision
from qa_mailer.db.engine import DatabaseUnreachable, create_engine, describe, reach
from qa_mailer.diagnose import diagnose, imap_endpoint, smtp_endpoint
from qa_mailer.ingest.imap_connection import connect, text_of
from qa_mailer.send.transport import SmtpTransport
from qa_mailer.template_check import check_templates
from qa_mailer.templates import TemplateProblem, Templates


@dataclass(frozen=True)
class Verdict:
    """One checked part: what it is, whether it passed, and the detail or the fix."""

    part: str
    ok: bool
    text: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'}  {self.part:<9} {self.text}"


async def check_setup(config: Config, clock: Clock) -> list[Verdict]:
    """Check every part of the set-up; the verdicts in the order they were checked."""
    verdicts = [Verdict("config", True, str(config.path))]
    verdicts.append(_templates(config, clock))
    verdicts.append(_roster(config))
    verdicts.append(await _database(config))
    verdicts.extend(await _imap(config))
    verdicts.append(await _relay(config))
    return verdicts


def _templates(config: Config, clock: Clock) -> Verdict:
    templates = Templates.of(config)
    try:
        check_templates(config, templates, clock)
    except TemplateProblem as exc:
        return Verdict("templates", False, str(exc))
    return Verdict("templates", True, f"every mail renders in {', '.join(templates.languages())}")


def _roster(config: Config) -> Verdict:
    if config.roster is None:
        return Verdict("roster", True, "none configured (countries come from mail domains)")
    try:
        roster = load_roster(config.roster, config.countries)
    except (ConfigError, OSError) as exc:
        return Verdict("roster", False, str(exc))
    return Verdict("roster", True, f"{config.roster}: {len(roster)} participants")


async def _database(config: Config) -> Verdict:
    engine = create_engine(config.database_url)
    where = describe(config.database_url)
    try:
        await reach(engine)
        current, head = await revision.current_revision(engine), revision.head_revision()
    except DatabaseUnreachable as exc:
        return Verdict("database", False, f"{exc}: check [database] url")
    finally:
        await engine.dispose()
    if current is None:
        return Verdict("database", False, f"{where} has no tables: run `qa-mailer db upgrade`")
    if current != head:
        return Verdict(
            "database",
            False,
            f"{where} is at revision {current}, the code at {head}: run `qa-mailer db upgrade`",
        )
    return Verdict("database", True, f"{where} at revision {current}")


async def _imap(config: Config) -> list[Verdict]:
    imap = config.imap
    if imap is None:
        listener = config.listener
        text = (
            f"not used; mail comes in on the {listener.protocol.upper()} listener at "
            f"{listener.host}:{listener.port}"
            if listener.enabled
            else "not used, and the listener is off: no mail can come in"
        )
        return [Verdict("imap", listener.enabled, text)]
    try:
        connection = await connect(imap)
    except ConfigError as exc:
        return [Verdict("imap", False, str(exc))]
    except Exception as exc:
        diagnosis = await diagnose(exc, imap_endpoint(imap))
        return [Verdict("imap", False, f"{imap.account}: {diagnosis.text}")]
    try:
        response = await connection.command(connection.client.examine(imap.mailbox))
        if response.result != "OK":
            return [
                Verdict(
                    "imap",
                    False,
                    f"logged in, but {imap.mailbox} cannot be opened "
                    f"({text_of(response.lines)}): check imap.mailbox",
                )
            ]
        idle, move = connection.has_capability("IDLE"), connection.has_capability("MOVE")
    except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
        diagnosis = await diagnose(exc, imap_endpoint(imap))
        return [Verdict("imap", False, f"{imap.account}: {diagnosis.text}")]
    finally:
        await connection.logout()
    waits = (
        "IDLE: new mail is seen at once"
        if idle
        else f"no IDLE: polled every {imap.poll_seconds:.0f} s"
    )
    moves = (
        "MOVE supported"
        if move or imap.processed == "keyword"
        else 'no MOVE: stored mail is copied and deleted; consider imap.processed = "keyword"'
    )
    plus = config.address.tagged("r...")
    return [
        Verdict(
            "imap", True, f"logged in as {imap.username}, {imap.mailbox} opened; {waits}; {moves}"
        ),
        Verdict(
            "plus",
            True,
            f"experts' replies come to {plus}, organisers' to {config.address.tagged('o...')}"
            + (
                f", bounces to {config.address.tagged('bounce-...')}"
                if config.outgoing.verp
                else ""
            )
            + ": the provider must deliver plus addresses "
            "to this mailbox (see the README's provider notes)",
        ),
    ]


async def _relay(config: Config) -> Verdict:
    if config.outgoing.transport != "smtp" or config.smtp is None:
        return Verdict(
            "outgoing", True, f"mail is written to the Maildir {config.outgoing.maildir}"
        )
    relay = config.smtp
    where = f"{relay.host}:{relay.port}"
    try:
        extensions = await SmtpTransport(relay).probe()
    except ConfigError as exc:
        return Verdict("relay", False, str(exc))
    except Exception as exc:
        diagnosis = await diagnose(exc, smtp_endpoint(relay))
        return Verdict("relay", False, f"{where}: {diagnosis.text}")
    secured = {"tls": "TLS", "starttls": "STARTTLS", "none": "no TLS"}[relay.security]
    login = "login accepted" if relay.username else "no login"
    utf8 = "SMTPUTF8 offered" if "smtputf8" in extensions else "no SMTPUTF8"
    pace = f"at most {relay.max_per_second:g} mails/s" if relay.max_per_second else "no rate limit"
    return Verdict(
        "relay",
        True,
        f"{where}: {secured}, {login}, {utf8}; nothing sent; "
        f"sends over {relay.connections} connection(s), {pace}",
    )
