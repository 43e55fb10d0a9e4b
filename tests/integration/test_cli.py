"""The qa-mailer command as a user runs it: help, errors, database, ingest, queues, serve."""

from __future__ import annotations

import asyncio
import json
import mailbox
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiosmtplib
import pytest
from click.testing import CliRunner

from qa_mailer.cli import main
from qa_mailer.config import Config
from tests.helpers import ROOT, make_mail, write_config
from tests.servers.ports import free_port


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", listener={"port": free_port()}
    )


def cli(config: Config, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(config.path), *args])
    return result.exit_code, result.output


def test_every_command_says_what_it_does() -> None:
    result = CliRunner().invoke(main, ["--help"])
    output = result.output
    assert result.exit_code == 0
    for command in (
        "serve",
        "demo",
        "db",
        "digest",
        "status",
        "ingest",
        "quarantine",
        "held",
        "parse-reply",
        "questions",
        "roster",
        "export",
        "ignored",
        "outbox",
        "participants",
    ):
        assert f"  {command} " in output
        sub = CliRunner().invoke(main, [command, "--help"])
        assert sub.exit_code == 0 and len(sub.output.split("\n\n")[1].strip()) > 10


def test_a_bad_config_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.toml"), "status"])
    assert (
        result.exit_code == 1
        and f"Error: {tmp_path / 'nope.toml'}: no such configuration file" in result.output
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('[service]\naddress = "qa@x.example.org"\n[listener]\nport = "eighty"\n')
    result = CliRunner().invoke(main, ["--config", str(bad), "status"])
    assert (
        result.exit_code == 1
        and "listener.port: expected an integer, got 'eighty'" in result.output
    )


def test_commands_refuse_a_database_that_is_behind(config: Config) -> None:
    code, output = cli(config, "status")
    assert code == 1 and "has no tables yet: run `qa-mailer db upgrade`" in output
    code, output = cli(config, "db", "upgrade")
    assert code == 0 and "database at revision" in output
    code, output = cli(config, "db", "current")
    assert code == 0 and output.split(";")[0].split(": ")[1] == output.strip().split(": ")[-1]


def test_ingest_status_quarantine_and_release(config: Config, tmp_path: Path) -> None:
    cli(config, "db", "upgrade")
    good, broken = tmp_path / "good.eml", tmp_path / "broken.eml"
    good.write_bytes(make_mail(sender="ana@drvo.example.hr", subject="[VC1] Q", body="Why?"))
    broken.write_bytes(b"\x00\x01 not mail")
    code, output = cli(config, "ingest", str(good), str(broken), str(good))
    assert (
        code == 0
        and output.count(": stored as message") == 2
        and "already stored as message 1" in output
    )
    assert "Messages: 2 waiting" in cli(config, "status")[1]
    _process_once(config)
    code, output = cli(config, "status")
    assert (
        "Messages: 0 waiting, 0 processing, 1 processed, 0 ignored (automatic), 0 held, "
        "1 quarantined" in output
    )
    assert "  HR Croatia" in output and "Outbox: 0 queued, 0 sending, 2 sent" in output
    # The worker that processed them is listed, with how it ended.
    assert "Processes:" in output and "stopped" in output
    code, output = cli(config, "quarantine", "list")
    assert "ParseError" in output and "1 quarantined" in output
    code, output = cli(config, "quarantine", "show", "2")
    assert "reason: ParseError" in output and "Traceback" in output
    # --raw prints the mail as it arrived (kept in raw_messages, beside the message's row).
    assert cli(config, "quarantine", "show", "2", "--raw") == (0, "\x00\x01 not mail")
    assert cli(config, "quarantine", "release", "1")[1].startswith(
        "Error: not quarantined: message(s) 1"
    )
    code, output = cli(config, "quarantine", "release", "M-2")
    assert code == 0 and "released 1 message(s): 2" in output


def test_organisers_list_show_move_and_close_questions(config: Config, tmp_path: Path) -> None:
    cli(config, "db", "upgrade")
    mails = [
        ("Ana Horvat <ana@drvo.example.hr>", "[VC2] Tko vodi klaster?", "Tko vodi klaster?"),
        ("Deniz Kaya <deniz@firma.example.com>", "[VC2] Ihracat", "Sesija 4: ihracat?"),
    ]
    for number, (sender, subject, body) in enumerate(mails):
        path = tmp_path / f"q{number}.eml"
        path.write_bytes(make_mail(sender=sender, subject=subject, body=body))
        cli(config, "ingest", str(path))
    _process_once(config)
    code, output = cli(config, "questions", "list", "--country", "unassigned")
    assert code == 0 and "Q-2  VC2 --" in output and "1 question(s)" in output
    code, output = cli(config, "questions", "show", "Q-1")
    assert code == 0 and "Q-1 (with_expert)" in output and "Tko vodi klaster?" in output
    assert "ack:Q-1" in output and "sent to the expert as D-1" in output
    code, output = cli(config, "questions", "move", "Q-2", "--session", "4")
    assert code == 0 and "Q-2 now in VC4, country unassigned" in output
    assert "not sent again" in output
    assert config.roster is not None
    with config.roster.open("a", encoding="utf-8") as roster:
        roster.write("deniz@firma.example.com,Deniz Kaya,TR,Firma,Izmir\n")
    code, output = cli(config, "roster", "reload")
    assert code == 0 and "deniz@firma.example.com: TR (Q-2)" in output
    code, output = cli(config, "questions", "merge", "Q-2", "into", "Q-1")
    assert code == 0 and "Q-2 merged into Q-1" in output
    code, output = cli(config, "questions", "merge", "Q-2", "Q-1")
    assert code == 1 and "Error: Q-2 is already merged" in output
    assert "merged" in cli(config, "status")[1]
    code, output = cli(config, "questions", "close", "Q-1", "--reason", "asked twice")
    assert code == 0 and "Q-1 closed: asked twice" in output
    # Q-2, merged into Q-1, is closed with it.
    code, output = cli(config, "questions", "list", "--state", "closed")
    assert "Q-1" in output and "Q-2" in output and "2 question(s)" in output
    code, output = cli(config, "questions", "show", "Q-7")
    assert code == 1 and "Error: no question Q-7" in output
    assert cli(config, "digest", "--session", "2")[1].count("pending") >= 1
    target = tmp_path / "report.csv"
    code, output = cli(
        config, "export", "--format", "csv", "--session", "4", "--output", str(target)
    )
    assert code == 0 and target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "Sesija 4: ihracat?" in target.read_text(encoding="utf-8-sig")
    code, output = cli(config, "export", "--format", "json")
    assert code == 0 and [item["ref"] for item in json.loads(output)] == ["Q-1", "Q-2"]
    assert "0 pending" in cli(config, "digest", "--session", "2")[1]


def test_ignored_mail_and_the_outbox_are_listed(config: Config, tmp_path: Path) -> None:
    cli(config, "db", "upgrade")
    no_sender = tmp_path / "test.eml"
    no_sender.write_bytes(b"To: qa@clusters.example.org\r\nSubject: test\r\n\r\nhello\r\n")
    question = tmp_path / "q.eml"
    question.write_bytes(make_mail(sender="ana@drvo.example.hr", subject="[VC1] Q", body="Why?"))
    cli(config, "ingest", str(no_sender), str(question))
    _process_once(config)
    code, output = cli(config, "ignored", "list")
    assert code == 0 and "(no sender)" in output and "test" in output and "1 ignored" in output
    code, output = cli(config, "outbox", "list")
    assert code == 0 and "ack:Q-1" in output and "to ana@drvo.example.hr" in output
    assert "2 mail(s)" in output
    assert "0 mail(s)" in cli(config, "outbox", "list", "--state", "failed")[1]
    code, output = cli(config, "outbox", "retry", "1")
    assert code == 1 and "Error: not queued or failed: mail 1" in output
    code, output = cli(config, "held", "show", "A-1")
    assert code == 1 and "Error: no held answer A-1" in output
    code, output = cli(config, "participants", "export", "ana@drvo.example.hr")
    assert code == 0 and json.loads(output)["questions"][0]["text"] == "Why?"
    code, output = cli(config, "participants", "erase", "ana@drvo.example.hr", "--yes")
    assert code == 0 and "1 question(s), 1 received mail(s) and 2 sent mail(s) erased" in output
    assert "still on the roster" in output
    code, output = cli(config, "participants", "export", "ana@drvo.example.hr")
    assert json.loads(output)["questions"] == []


def test_digest_names_an_unknown_session(config: Config) -> None:
    cli(config, "db", "upgrade")
    code, output = cli(config, "digest", "--session", "9")
    assert code == 2 and "no session 9" in output and "(sessions: 1, 2, 3, 4, 5)" in output
    code, output = cli(config, "digest", "--session", "1")
    assert code == 0 and "Total: 0 questions" in output


def test_digest_programme_prints_the_report_and_writes_its_html(
    config: Config, tmp_path: Path
) -> None:
    cli(config, "db", "upgrade")
    html = tmp_path / "programme.html"
    code, output = cli(config, "digest", "--programme", "--html", str(html))
    assert code == 0 and "questions to the experts across the programme" in output
    assert "VC5   Own cases: 0 asked" in output
    assert "By country" in html.read_text(encoding="utf-8")
    code, output = cli(config, "digest")
    assert code == 2 and "--session N, or use --programme" in output


def test_serve_takes_mail_and_stops_cleanly_on_sigterm(config: Config) -> None:
    cli(config, "db", "upgrade")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "qa_mailer", "--config", str(config.path), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        asyncio.run(_send_when_listening(config))
        outbox = config.outgoing.maildir
        deadline = time.monotonic() + 60  # as test_first_mail allows for the same work
        while time.monotonic() < deadline and len(_files(outbox)) < 2:
            time.sleep(0.05)
        assert len(_files(outbox)) == 2  # the acknowledgement and the expert's copy
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "stopping: intake closed" in output


def test_questions_sorted_beside_a_running_serve_fed_by_its_listener(config: Config) -> None:
    cli(config, "db", "upgrade")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "qa_mailer", "--config", str(config.path), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        stranger = "deniz@firma.example.com"
        asyncio.run(
            _send_when_listening(
                config,
                [
                    (
                        "ana@drvo.example.hr",
                        "[VC2] Tko vodi klaster?",
                        "Tko bi trebao voditi klaster?",
                    ),
                    (
                        stranger,
                        "[VC2] Pitanje",
                        "Merhaba,\n\nTko bi trebao voditi klaster?\n\nDeniz",
                    ),
                ],
            )
        )
        _wait_for_output(config, ("questions", "list"), "2 question(s)")
        code, output = cli(config, "questions", "list", "--country", "unassigned")
        assert code == 0 and "Q-2  VC2 --" in output
        code, output = cli(config, "digest", "--session", "2")
        assert "resembles Q-1: `qa-mailer questions merge Q-2 into Q-1`" in output
        # The roster changes while serving: the running service sorts Deniz into Turkey.
        assert config.roster is not None
        with config.roster.open("a", encoding="utf-8") as roster:
            roster.write(f"{stranger},Deniz Kaya,TR,Firma,Izmir\n")
        _wait_for_output(config, ("questions", "list", "--country", "TR"), "1 question(s)")
        code, output = cli(config, "questions", "merge", "Q-2", "into", "Q-1")
        assert code == 0 and "Q-2 merged into Q-1" in output
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "roster reloaded: 6 participant(s); 1 unassigned participant(s) sorted (Q-2)" in output


def _wait_for_output(config: Config, args: tuple[str, ...], expected: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        output = cli(config, *args)[1]
        if expected in output or time.monotonic() > deadline:
            assert expected in output, output
            return output
        time.sleep(0.2)


def _files(folder: Path) -> list[str]:
    return [key for key, _ in mailbox.Maildir(folder, create=True).items()]


async def _send_when_listening(
    config: Config,
    mails: list[tuple[str, str, str]] | None = None,
) -> None:
    """Send (sender, subject, body) mails to the listener once it answers."""
    deadline = time.monotonic() + 20
    for sender, subject, body in mails or [("ana@drvo.example.hr", "[VC1] Q", "Why?")]:
        while True:
            try:
                await aiosmtplib.send(
                    make_mail(sender=sender, subject=subject, body=body),
                    sender=sender,
                    recipients=[config.address.address],
                    hostname="127.0.0.1",
                    port=config.listener.port,
                    timeout=5,
                )
                break
            except (OSError, aiosmtplib.SMTPConnectError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


def _process_once(config: Config) -> None:
    """What `serve` does to stored mail, run once in this process."""
    from qa_mailer.app import Service
    from qa_mailer.clock import SystemClock
    from qa_mailer.db.engine import create_engine

    async def work() -> None:
        engine = create_engine(config.database_url)
        service = Service(config, engine, clock=SystemClock())
        await service.workers.register(["test"])
        await service.pipeline.process_pending()
        await service.sender.deliver_due()
        await service.workers.stop()
        await engine.dispose()

    asyncio.run(work())


def test_parse_reply_prints_the_trimmed_reply_and_json() -> None:
    from tests.helpers import DATA

    own = DATA / "replies" / "own"
    mail, questions = own / "ru_gmail_interleaved.txt", own / "questions"
    result = CliRunner().invoke(main, ["parse-reply", str(mail)])
    assert result.exit_code == 0 and result.output.strip()
    expected = json.loads((own / "ru_gmail_interleaved.expected.json").read_text(encoding="utf-8"))
    result = CliRunner().invoke(
        main, ["parse-reply", "--json", "--questions", str(questions / "ru.json"), str(mail)]
    )
    assert result.exit_code == 0
    parsed = json.loads(result.output)
    assert set(parsed) >= {"reply", "new_text", "new_text_with_signature", "preamble", "answers"}
    assert [a["ref"] for a in parsed["answers"]] == [a["ref"] for a in expected["answers"]]
    assert all(a["ref"] and a["answer"] for a in parsed["answers"])


def test_parse_reply_names_a_bad_questions_file(tmp_path: Path) -> None:
    reply, bad = tmp_path / "reply.txt", tmp_path / "questions.json"
    reply.write_text("Yes.\n")
    bad.write_text('[{"text": "no ref"}]')
    result = CliRunner().invoke(main, ["parse-reply", "--questions", str(bad), str(reply)])
    assert result.exit_code == 1 and f'{bad}: item 0 has no "ref"' in result.output


def test_serve_names_a_port_already_in_use(config: Config) -> None:
    import socket

    cli(config, "db", "upgrade")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", config.listener.port))
        taken.listen()
        code, output = cli(config, "serve")
    assert code == 1 and f"Error: cannot listen on 127.0.0.1:{config.listener.port}" in output


@pytest.mark.parametrize(
    "command",
    [["serve"], ["status"], ["db", "upgrade"], ["db", "current"], ["quarantine", "list"]],
    ids=" ".join,
)
def test_a_database_that_does_not_answer_is_named_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    # A real PostgreSQL URL on a port where nothing listens, with a password to keep out.
    port = free_port()
    url = f"postgresql+asyncpg://qa:s3cret@127.0.0.1:{port}/qa"
    config = write_config(tmp_path, url, listener={"port": free_port()})
    code, output = cli(config, *command)
    assert code == 1
    assert output.startswith(
        f"Error: cannot reach the database postgresql+asyncpg://qa:***@127.0.0.1:{port}/qa: "
    )
    assert f"[database] settings in {config.path}" in output
    assert "Traceback" not in output and "s3cret" not in output and "listen" not in output
    assert len(output.strip().splitlines()) == 1


def test_a_sqlite_file_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{blocker / 'qa.db'}")
    code, output = cli(config, "status")
    assert code == 1
    assert f"Error: cannot make the folder of the SQLite database {blocker / 'qa.db'}" in output
    assert len(output.strip().splitlines()) == 1
