"""Show that a change to parse/ or replies/ leaves every result as it was.

    python bench/cpu_equivalence.py dump /tmp/cpu-snapshot.json    # on the code before
    python bench/cpu_equivalence.py check /tmp/cpu-snapshot.json   # after each change

Records, for every mail of bench/cpu_corpus.py (the generated questions and every mail file
under tests/data): each ParsedMail field, its ``text``, ``automatic_reason``, ``question_text``
and the whole ParsedReply of its bodies; for every reply of tests/data/replies: the ParsedReply
of plain and HTML together and each alone, with and without its questions; and the parses of
the hostile lines and never-raises inputs of tests/unit/replies/test_rules.py. ``check`` prints
every difference and exits 1 if there is one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cpu_corpus

from qa_mailer.addresses import ServiceAddress
from qa_mailer.classify.incoming import Incoming
from qa_mailer.classify.rules import automatic_reason
from qa_mailer.parse import ParsedMail, ParseError, parse_mail
from qa_mailer.replies import ParsedReply, QuestionRef, parse_reply
from qa_mailer.route.questions import question_text

ADDRESS = ServiceAddress.parse(cpu_corpus.QA)
RECEIVED = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _reply(parsed: ParsedReply) -> list[Any]:
    return [
        parsed.reply,
        parsed.new_text,
        parsed.preamble,
        [[a.quoted, a.ref, a.answer] for a in parsed.answers],
    ]


def _mail(mail: ParsedMail) -> dict[str, Any]:
    fields = {f.name: repr(getattr(mail, f.name)) for f in dataclasses.fields(mail)}
    fields["text"] = mail.text
    fields["thread_ids"] = repr(mail.thread_ids)
    return fields


def _mail_results(raw: bytes) -> dict[str, Any]:
    record: dict[str, Any] = {"sha256": hashlib.sha256(raw).hexdigest()}
    try:
        mail = parse_mail(raw)
    except ParseError as exc:
        record["error"] = str(exc)
        return record
    record["mail"] = _mail(mail)
    for envelope_from in (None, "", "someone@example.org"):
        incoming = Incoming(mail, "imap", envelope_from, (cpu_corpus.QA,), RECEIVED)
        record[f"automatic {envelope_from!r}"] = automatic_reason(incoming, ADDRESS)
    record["question_text"] = question_text(incoming)
    record["parse_reply"] = _reply(parse_reply(text=mail.text_plain, html=mail.html))
    return record


def _hostile() -> Iterator[tuple[str, str | None, str | None]]:
    path = cpu_corpus.ROOT / "tests" / "unit" / "replies" / "test_rules.py"
    spec = importlib.util.spec_from_file_location("replies_test_rules", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for number, line in enumerate(module.HOSTILE_LINES):
        yield f"hostile {number}", (line + "\n") * 300, None
    yield "controls", "\x00\x01\x02" * 1000, "<<<>>>" * 1000
    yield "markers", ">" * 50_000, None
    yield "unicode", "".join(chr(code) for code in range(0x20, 0x3000)), None
    yield "crlf", "a\r\nb\rc\n\r\n> q\r> r\n", None
    yield "invisible", "Hi\u200b\u00a0there\ufeff\n\u2007> quoted\u202f\n\x7f\x0b\x0c", None


def results() -> dict[str, Any]:
    """Every result the snapshot holds, by a stable name."""
    found: dict[str, Any] = {}
    for number, (kind, raw) in enumerate(cpu_corpus.questions(2000)):
        found[f"question {number} {kind}"] = _mail_results(raw)
    for name, raw in cpu_corpus.data_mails().items():
        found[f"file {name}"] = _mail_results(raw)
    for name, text, html, asked in cpu_corpus.reply_inputs():
        variants: list[tuple[str, str | None, str | None, tuple[QuestionRef, ...]]] = [
            ("both", text, html, asked),
            ("text", text, None, asked),
            ("html", None, html, asked),
            ("both, no questions", text, html, ()),
        ]
        for label, plain, markup, questions in variants:
            found[f"reply {name} {label}"] = _reply(parse_reply(plain, markup, questions))
    for name, plain, markup in _hostile():
        found[f"reply {name}"] = _reply(parse_reply(plain, markup))
    return found


def main() -> None:
    command, path = sys.argv[1], Path(sys.argv[2])
    current = results()
    if command == "dump":
        path.write_text(json.dumps(current, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"{len(current)} results written to {path}")
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    differences = [
        name for name in saved.keys() | current.keys() if saved.get(name) != current.get(name)
    ]
    for name in sorted(differences)[:50]:
        print(
            f"DIFFERS: {name}\n  before: {saved.get(name)!r:.2000}\n  after:  {current.get(name)!r:.2000}"
        )
    print(f"{len(current)} results compared, {len(differences)} differ")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
