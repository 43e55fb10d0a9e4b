"""Reading reply files for the command line, and writing parses as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from qa_mailer.replies import Answer, ParsedReply, QuestionRef
from qa_mailer.replies.files import (
    load_questions,
    load_reply_file,
    parsed_reply_to_json,
)

MAIL = b"""From: Maria <m@example.org>
To: QA <qa@example.org>
Subject: Re: VC3
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b"

--b
Content-Type: text/plain; charset="koi8-r"
Content-Transfer-Encoding: 8bit

%s
--b
Content-Type: text/html; charset="x-no-such-charset"
Content-Transfer-Encoding: quoted-printable

<p>=D0=94=D0=B0</p>
--b--
""" % "Да".encode("koi8-r")


def test_eml_gives_both_bodies_whatever_the_charsets(tmp_path: Path) -> None:
    path = tmp_path / "reply.eml"
    path.write_bytes(MAIL)
    text, html = load_reply_file(path)
    assert text is not None and text.strip() == "Да"
    assert html is not None and html.strip() == "<p>Да</p>"


def test_eml_with_broken_mime_still_gives_its_text(tmp_path: Path) -> None:
    path = tmp_path / "broken.eml"
    path.write_bytes(
        b'Content-Type: multipart/mixed; boundary="never"\nSubject: =?bad?=\n\nJust text.\n'
    )
    text, html = load_reply_file(path)
    assert html is None
    assert text is not None and "Just text." in text


def test_single_part_eml(tmp_path: Path) -> None:
    path = tmp_path / "plain.eml"
    path.write_bytes(b"From: a@b.c\nContent-Type: text/plain; charset=utf-8\n\nHello\n")
    assert load_reply_file(path) == ("Hello\n", None)


def test_txt_is_a_body_even_when_it_starts_like_headers(tmp_path: Path) -> None:
    path = tmp_path / "reply.txt"
    path.write_bytes(b"\xef\xbb\xbfQ-17: yes\nQ-18: no\n")
    assert load_reply_file(path) == ("Q-17: yes\nQ-18: no\n", None)


def test_txt_in_an_undeclared_legacy_charset_does_not_fail(tmp_path: Path) -> None:
    path = tmp_path / "reply.txt"
    path.write_bytes("Şunu yazdı".encode("iso-8859-9"))
    text, html = load_reply_file(path)
    assert html is None and text == "Şunu yazdı"


def test_html_honours_its_meta_charset(tmp_path: Path) -> None:
    path = tmp_path / "reply.html"
    path.write_bytes(
        b'<html><head><meta charset="windows-1251"></head><body>' + "Да".encode("cp1251")
    )
    text, html = load_reply_file(path)
    assert text is None and html is not None and html.endswith("<body>Да")


def test_unknown_suffix_is_sniffed(tmp_path: Path) -> None:
    mail = tmp_path / "reply.msg.bak"
    mail.write_bytes(b"From: a@b.c\nSubject: x\nContent-Type: text/plain\n\nHello\n")
    body = tmp_path / "notes"
    body.write_bytes(b"Q-17: yes\n")
    assert load_reply_file(mail) == ("Hello\n", None)
    assert load_reply_file(body) == ("Q-17: yes\n", None)


def test_parsed_reply_to_json_round_trips() -> None:
    parsed = ParsedReply(
        reply="r",
        new_text="n",
        new_text_with_signature="n\n-- \ns",
        preamble="p",
        answers=(Answer("q", "Q-17", "a"), Answer("", None, "b")),
    )
    data = parsed_reply_to_json(parsed)
    assert json.loads(json.dumps(data)) == {
        "reply": "r",
        "new_text": "n",
        "new_text_with_signature": "n\n-- \ns",
        "preamble": "p",
        "answers": [
            {"quoted": "q", "ref": "Q-17", "answer": "a"},
            {"quoted": "", "ref": None, "answer": "b"},
        ],
    }


def test_load_questions(tmp_path: Path) -> None:
    path = tmp_path / "questions.json"
    path.write_text(json.dumps({"questions": [{"ref": "Q-17", "text": "How?"}]}), "utf-8")
    assert load_questions(path) == (QuestionRef("Q-17", "How?"),)
