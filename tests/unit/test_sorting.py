"""Sorting a batch a stage at a time gives what sorting each message alone gives."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from qa_mailer import sorting
from qa_mailer.classify.language import clues_for as real_clues_for
from qa_mailer.config import Config
from qa_mailer.db import MessageKind, MessageState
from qa_mailer.db.claims import MAX_MESSAGE_ATTEMPTS, ClaimedMessage
from qa_mailer.sorting import Sorted, sort_in_helper, sort_messages, use_config
from tests.helpers import EXPERT, make_mail, write_config

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path, "sqlite+aiosqlite:///x.db")


def claimed(raws: list[bytes], attempts: int = 1) -> list[ClaimedMessage]:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    return [
        ClaimedMessage(n, attempts, raw, "smtp", None, "qa@clusters.example.org", now, None)
        for n, raw in enumerate(raws)
    ]


def one_at_a_time(config: Config, messages: list[ClaimedMessage]) -> list[Sorted]:
    return [sort_messages(config, [message])[0] for message in messages]


def mixed_mail() -> list[bytes]:
    """Questions in the five countries' charsets, an automatic reply, the expert writing out
    of the blue, mail that is no mail, and the malformed MIME of tests/data/mime."""
    questions = [
        make_mail(sender=sender, subject=f"[VC{n % 5 + 1}] {subject}", body=body, charset=charset)
        for n, (sender, subject, body, charset) in enumerate(
            [
                ("ana@drvo.example.hr", "Tko vodi klaster?", "Tko bi trebao voditi klaster?", "iso-8859-2"),
                ("ivan@les.example.ru", "Кто управляет?", "Кто должен управлять кластером?", "windows-1251"),
                ("petar@firm.example.bg", "Кой управлява?", "Кой трябва да управлява клъстера?", "utf-8"),
                ("marko@firm.example.rs", "Ko vodi klaster?", "Da li klaster treba da vodi opština?", "utf-8"),
                ("ayse@firm.example.com.tr", "Küme kim yönetir?", "Kümeyi kim yönetmeli?", "iso-8859-9"),
            ]
        )
    ]  # fmt: skip
    others = [
        make_mail(
            sender="ana@drvo.example.hr",
            subject="Out of office",
            body="I am away.",
            headers={"Auto-Submitted": "auto-replied"},
        ),
        make_mail(sender=EXPERT, subject="Hello", body="A note to nobody in particular."),
        b"\x00\x01 not mail at all",
    ]
    files = sorted((DATA / "mime").glob("*.eml")) + sorted((DATA / "mime").glob("*.txt"))
    return questions + others + [path.read_bytes() for path in files]


def test_a_batch_sorted_by_stages_is_sorted_as_one_message_at_a_time(config: Config) -> None:
    messages = claimed(mixed_mail())
    together = sort_messages(config, messages)
    assert together == one_at_a_time(config, messages)
    kinds = {message.kind for message in together}
    assert {MessageKind.QUESTION, MessageKind.AUTOMATIC, MessageKind.EXPERT} <= kinds
    assert any(message.state == MessageState.QUARANTINED for message in together)
    assert all(
        message.language_clues is not None
        for message in together
        if message.kind == MessageKind.QUESTION and message.state != MessageState.QUARANTINED
    )


def test_a_message_failing_in_a_later_stage_fails_alone(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    def clues_for(text: str) -> object:
        if "klaster" in text:
            raise RuntimeError("the detector broke on this text")
        return real_clues_for(text)

    monkeypatch.setattr(sorting, "clues_for", clues_for)
    messages = claimed(mixed_mail()[:5])
    together = sort_messages(config, messages)
    assert together == one_at_a_time(config, messages)
    failed = [m.claimed.id for m in together if m.state == MessageState.QUARANTINED]
    assert failed == [0, 3]  # the Croatian and the Serbian question
    assert together[0].reason == "RuntimeError: the detector broke on this text"
    assert "clues_for" in (together[0].details or "")
    assert all(together[n].language_clues is not None for n in (1, 2, 4))


def test_a_message_tried_too_often_is_failed_without_being_parsed(config: Config) -> None:
    [message] = sort_messages(config, claimed(mixed_mail()[:1], MAX_MESSAGE_ATTEMPTS + 1))
    assert message.state == MessageState.QUARANTINED and message.mail is None
    assert message.reason is not None and "did not finish" in message.reason


def test_a_helper_sends_a_question_back_without_its_body_parts(config: Config) -> None:
    # What a parsing helper returns is pickled to the service. A question comes back with
    # its trimmed text and everything else the writing reads, without the mail's body parts
    # (the writing never reads them); any other mail comes back whole, for its desk.
    use_config(config)
    messages = claimed(mixed_mail())
    here = sort_messages(config, messages)
    sent = pickle.dumps(sort_in_helper(messages))
    back = pickle.loads(sent)
    questions = 0
    for mine, theirs in zip(here, back, strict=True):
        assert (theirs.state, theirs.kind, theirs.reason, theirs.text, theirs.language_clues) == (
            mine.state,
            mine.kind,
            mine.reason,
            mine.text,
            mine.language_clues,
        )
        assert theirs.claimed.raw == b""  # the caller has the claimed message
        if mine.kind == MessageKind.QUESTION:
            questions += 1
            assert mine.mail.text_plain or mine.mail.html or mine.text == "(empty message)"
            assert theirs.mail.text_plain is None and theirs.mail.html is None
            assert replace(theirs.mail, text_plain=mine.mail.text_plain, html=mine.mail.html) == (
                mine.mail
            )
            assert theirs.incoming == replace(mine.incoming, mail=theirs.mail)
            assert theirs.incoming.mail is theirs.mail
        else:
            assert (theirs.mail, theirs.incoming) == (mine.mail, mine.incoming)
    assert questions >= 5
    assert len(sent) < len(pickle.dumps(here)) * 0.75
