"""classify/: machine-made mail, session, country and thread keys, rule by rule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from qa_mailer.addresses import ServiceAddress
from qa_mailer.classify import threading as threading_module
from qa_mailer.classify.incoming import Incoming
from qa_mailer.classify.roster import load_roster
from qa_mailer.classify.rules import (
    AUTOMATIC_RULES,
    COUNTRY_RULES,
    SESSION_RULES,
    CountryContext,
    SessionContext,
    automatic_reason,
    choose_country,
    choose_session,
)
from qa_mailer.classify.threading import references_in, strip_subject, subject_key
from qa_mailer.config import Config
from qa_mailer.parse import parse_mail
from tests.helpers import QA, make_mail, write_config

ADDRESS = ServiceAddress.parse(QA)


def incoming(
    raw: bytes,
    *,
    envelope_from: str | None = None,
    envelope_to: tuple[str, ...] = (),
    at: datetime | None = None,
) -> Incoming:
    return Incoming(
        mail=parse_mail(raw),
        source="smtp" if envelope_from is not None else "imap",
        envelope_from=envelope_from,
        envelope_to=envelope_to,
        received_at=at or datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
    )


def question(**kwargs: object) -> bytes:
    settings: dict[str, object] = {
        "sender": "Ana <ana@drvo.example.hr>",
        "subject": "A question",
        "body": "Why?",
    }
    settings.update(kwargs)
    return make_mail(**settings)  # type: ignore[arg-type]


def test_every_rule_has_a_name_and_a_description() -> None:
    for rule in (*AUTOMATIC_RULES, *SESSION_RULES, *COUNTRY_RULES):
        assert rule.name and rule.description.endswith(".")
    names = [r.name for r in AUTOMATIC_RULES]
    assert len(names) == len(set(names))


def test_a_person_writing_is_not_automatic() -> None:
    assert automatic_reason(incoming(question(headers={"Auto-Submitted": "no"})), ADDRESS) is None


@pytest.mark.parametrize(
    ("kwargs", "envelope_from", "rule"),
    [
        ({"headers": {"Auto-Submitted": "auto-replied"}}, None, "auto-submitted"),
        ({"headers": {"Auto-Submitted": "auto-generated"}}, None, "auto-submitted"),
        ({"headers": {"Precedence": "bulk"}}, None, "precedence"),
        ({"headers": {"Precedence": "auto_reply"}}, None, "precedence"),
        ({"headers": {"X-Auto-Response-Suppress": "All"}}, None, "auto-response-suppress"),
        ({"headers": {"X-Autoreply": "yes"}}, None, "auto-reply-headers"),
        ({"headers": {"List-Id": "<members.lists.example.org>"}}, None, "list-mail"),
        ({"headers": {"X-Failed-Recipients": "x@y.example.org"}}, None, "delivery-report"),
        ({"headers": {"X-Loop": QA}}, None, "loop"),
        ({"sender": f"Q&A <{QA}>"}, None, "loop"),
        ({"sender": "qa+vc3@clusters.example.org"}, None, "loop"),
        ({"sender": "MAILER-DAEMON@mx.example.org"}, None, "daemon-sender"),
        ({"sender": "no-reply@service.example.org"}, None, "daemon-sender"),
        ({}, "", "null-sender"),
        ({"headers": {"Return-Path": "<>"}}, None, "null-sender"),
        ({"subject": "Automatic reply: A question"}, None, "auto-reply-subject"),
        ({"subject": "Автоответ: Вопрос"}, None, "auto-reply-subject"),
        ({"subject": "Otomatik yanıt: Soru"}, None, "auto-reply-subject"),
        ({"subject": "Out of Office: back on Monday"}, None, "auto-reply-subject"),
    ],
)
def test_machine_made_mail_is_recognised(
    kwargs: dict[str, object], envelope_from: str | None, rule: str
) -> None:
    reason = automatic_reason(incoming(question(**kwargs), envelope_from=envelope_from), ADDRESS)
    assert reason is not None and reason.startswith(f"{rule}:")


def test_a_question_about_automatic_replies_is_still_a_question() -> None:
    raw = question(subject="How do clusters handle automatic reply systems?")
    assert automatic_reason(incoming(raw), ADDRESS) is None


def test_a_bounce_report_is_recognised() -> None:
    raw = (
        b"From: Mail Delivery System <mailer@mx.example.org>\r\nTo: qa@clusters.example.org\r\nSubject: failed\r\n"
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nfailed\r\n--b--\r\n"
    )
    assert (
        automatic_reason(incoming(raw), ADDRESS)
        == "delivery-report: delivery report (multipart/report)"
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return write_config(tmp_path, "sqlite+aiosqlite:///x.db")


def session_of(
    config: Config,
    raw: bytes,
    *,
    to: tuple[str, ...] = (),
    at: datetime | None = None,
    thread: int | None = None,
) -> tuple[int, str]:
    return choose_session(
        SessionContext(incoming(raw, envelope_to=to, at=at), config.sessions, ADDRESS, thread)
    )


@pytest.mark.parametrize(
    "subject",
    [
        "[VC3] Export",
        "vc3: export",
        "VC 3 question",
        "Re: [vc-3] x",
        "Session 3 question",
        "Въпрос за сесия 3",
        "Вопрос по сессии 3",
        "Pitanje za sesiju 3",
        "Oturum 3 hakkında",
    ],
)
def test_session_from_a_subject_tag(config: Config, subject: str) -> None:
    assert session_of(config, question(subject=subject)) == (3, "subject-tag")


def test_session_tag_for_an_unknown_session_is_ignored(config: Config) -> None:
    _, rule = session_of(config, question(subject="[VC9] what?"))
    assert rule == "schedule"


def test_session_from_the_plus_address(config: Config) -> None:
    assert session_of(config, question(to="qa+vc4@clusters.example.org")) == (4, "plus-address")
    assert session_of(config, question(), to=("qa+vc2@clusters.example.org",)) == (
        2,
        "plus-address",
    )


def test_subject_tag_wins_over_plus_address_and_thread(config: Config) -> None:
    raw = question(subject="[VC5] x", to="qa+vc4@clusters.example.org")
    assert session_of(config, raw, thread=2) == (5, "subject-tag")


def test_session_from_the_thread(config: Config) -> None:
    assert session_of(config, question(), thread=2) == (2, "thread")


def test_session_from_the_schedule(config: Config) -> None:
    # Sessions run 14:00-16:00 UTC on 3, 10, 17, 24 and 31 December.
    during = datetime(2026, 12, 10, 15, 0, tzinfo=UTC)
    between = datetime(2026, 12, 11, 9, 0, tzinfo=UTC)
    after_all = datetime(2027, 2, 1, tzinfo=UTC)
    assert session_of(config, question(), at=during) == (2, "schedule")
    assert session_of(config, question(), at=between) == (3, "schedule")
    assert session_of(config, question(), at=after_all) == (5, "schedule")


def country_of(config: Config, raw: bytes) -> tuple[str | None, str | None]:
    roster = load_roster(config.roster, config.countries)
    return choose_country(CountryContext(incoming(raw), config.countries, roster))


def test_country_from_the_roster_beats_the_domain(config: Config) -> None:
    # Milan writes from a .com address; the roster knows he is from Serbia.
    assert country_of(config, question(sender="milan@gmail.example.com")) == ("RS", "roster")


@pytest.mark.parametrize(
    ("sender", "code"),
    [
        ("x@firm.bg", "BG"),
        ("x@mail.firm.hr", "HR"),
        ("x@firm.rs", "RS"),
        ("x@firm.com.tr", "TR"),
        ("x@firm.ru", "RU"),
    ],
)
def test_country_from_the_sender_domain(config: Config, sender: str, code: str) -> None:
    assert country_of(config, question(sender=sender)) == (code, "sender-domain")


def test_country_from_a_subject_tag_then_unassigned(config: Config) -> None:
    assert country_of(config, question(sender="x@gmail.example.com", subject="[TR] ihracat")) == (
        "TR",
        "subject-tag",
    )
    assert country_of(config, question(sender="x@gmail.example.com", subject="[XX] hm")) == (
        None,
        None,
    )


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Export question",
        "RE: RE: Export question",
        "Fwd: Export question",
        "AW: Export question",
        "Ответ: Export question",
        "Отг.: Export question",
        "Odg: Export question",
        "Odgovor: Export question",
        "YNT: Export question",
        "Yanıt: Export question",
        "Re: [Q-17] Export question [VC3]",
        "Re[2]: export   QUESTION",
        "SV: Export question",
    ],
)
def test_reply_prefixes_of_all_languages_normalise_away(subject: str) -> None:
    assert subject_key(subject) == "export question"


def test_a_subject_is_stripped_alike_at_any_length_and_a_huge_one_is_not_kept() -> None:
    # Subjects are stripped through a cache; a sender's subject can be megabytes long, and
    # only subjects of a usual length may stay in it.
    remembered = threading_module._stripped.cache_info().currsize
    huge = "Re: [VC3] " + "Export question " * 70_000
    assert strip_subject(huge) == ("Export question " * 70_000).strip()
    assert threading_module._stripped.cache_info().currsize == remembered
    assert strip_subject("Re: Re: [VC3]  Export   question") == "Export question"
    assert strip_subject("Re: Re: [VC3]  Export   question") == "Export question"


def test_question_references_in_subjects() -> None:
    assert references_in("Re: Export [Q-17] and Q-3") == [17, 3]
    assert references_in("FAQ-17 or Q-17x") == []
