"""parse/: any charset, HTML-only mail, and hostile MIME come out as readable text, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa_mailer.parse import ParseError, parse_mail
from qa_mailer.parse.charsets import decode_guessing, decode_with
from qa_mailer.parse.html import html_to_text
from tests.helpers import DATA

MAIL = DATA / "mail"
MIME = DATA / "mime"


@pytest.mark.parametrize(
    ("name", "subject", "sender", "words"),
    [
        ("question_windows1251.eml", "Вопрос о кластере", "Иван Петров", "университеты помогают"),
        ("question_koi8r.eml", "Вопрос о кластере", "Ольга", "университеты помогают"),
        ("question_undeclared_cp1251.eml", "Vopros", "Ivan", "университеты помогают"),
        ("question_mislabelled_utf8_is_cp1251.eml", "Vopros", "Ivan", "университеты помогают"),
        ("question_iso8859_5.eml", "Въпрос за клъстера", "Petar", "доверие между конкуренти"),
        (
            "question_iso8859_2.eml",
            "Pitanje: tko upravlja klasterom?",
            "Ana",
            "općina ili poduzetnici? Žurno, đače!",
        ),
        (
            "question_html_only_iso8859_9.eml",
            "Kümelenme ve ihracat",
            "Ayşe Yılmaz",
            "Şirketimiz İstanbul'da",
        ),
        ("question_quoted_printable_utf8.eml", "Pitanje o klasteru — VC2", "Milan", "može da uđe"),
    ],
)
def test_every_charset_comes_out_readable(name: str, subject: str, sender: str, words: str) -> None:
    mail = parse_mail((MAIL / name).read_bytes())
    assert mail.subject == subject
    assert mail.from_name == sender
    assert words in mail.text
    assert "\ufffd" not in mail.text


def test_html_only_mail_is_readable_text_without_markup() -> None:
    mail = parse_mail((MAIL / "question_html_only_iso8859_9.eml").read_bytes())
    assert mail.text_plain is None and mail.html is not None
    assert (
        mail.text
        == "Merhaba,\n\nBir küme ihracata nasıl yardım eder? Şirketimiz İstanbul'da.\n\nSaygılarımla,\nAyşe"
    )


def test_addresses_references_and_headers() -> None:
    raw = (
        b'From: "Ana H." <Ana@Drvo.Example.HR>\r\nTo: QA <qa+vc3@clusters.example.org>, x@y.example.org\r\n'
        b"Cc: c@d.example.org\r\nSubject: Re: hi\r\nMessage-ID: bare-id@host\r\n"
        b"In-Reply-To: <a@b>\r\nReferences: <r1@x> <r2@x>\r\n <a@b>\r\nAuto-Submitted: no\r\n\r\nbody\r\n"
    )
    mail = parse_mail(raw)
    assert mail.from_address == "ana@drvo.example.hr" and mail.from_name == "Ana H."
    assert mail.to == ("qa+vc3@clusters.example.org", "x@y.example.org") and mail.cc == (
        "c@d.example.org",
    )
    assert mail.message_id == "<bare-id@host>"
    assert mail.thread_ids == ("<a@b>", "<r2@x>", "<r1@x>")
    assert mail.header("auto-submitted") == "no"


def test_nul_characters_never_reach_the_database() -> None:
    mail = parse_mail(b"From: a@b.example.org\r\nSubject: x\x00y\r\n\r\nbo\x00dy\r\n")
    assert mail.subject == "xy" and mail.text.strip() == "body"


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"\x00\x01\x02 binary junk without headers"])
def test_unreadable_input_raises_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_mail(raw)


def test_an_outlook_msg_file_is_not_mail() -> None:
    with pytest.raises(ParseError, match="no headers"):
        parse_mail((MIME / "spamscope_mail_outlook_1.eml").read_bytes())


CORPUS = sorted(
    p
    for p in MIME.iterdir()
    if p.suffix in {".eml", ".txt"} and p.name != "spamscope_mail_outlook_1.eml"
)
# Messages with nothing to read: every part is empty (12a, 24) by construction.
EMPTY = {"cpython_msg_12a.txt", "cpython_msg_24.txt"}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_tricky_mime_parses_to_a_sane_body(path: Path) -> None:
    mail = parse_mail(path.read_bytes())
    if path.name in EMPTY:
        assert mail.text.strip() == ""
    else:
        assert mail.text.strip(), "no text recovered"
        # Text, not MIME structure or base64 soup.
        assert "Content-Transfer-Encoding: base64" not in mail.text
    assert "\x00" not in mail.text


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cpython_msg_25.txt", "The original message was received"),  # multipart without boundary
        ("cpython_msg_31.txt", "message 1"),  # multipart without start boundary
        ("cpython_msg_41.txt", "Blah blah blah"),  # claims multipart, is not
        (
            "spamscope_mail_malformed_3.eml",
            "Problemas para visualizar",
        ),  # base64 HTML in a broken multipart
        ("spamscope_mail_test_6.eml", "Профиль"),  # UTF-8 with one broken byte stays UTF-8
    ],
)
def test_broken_structures_are_recovered(name: str, expected: str) -> None:
    assert expected in parse_mail((MIME / name).read_bytes()).text


def test_charset_guessing_tells_cyrillic_code_pages_apart() -> None:
    text = "Какую роль играют университеты в социальной сети кластера?"
    assert decode_guessing(text.encode("cp1251")) == text
    assert decode_guessing(text.encode("koi8_r")) == text
    assert decode_guessing(text.encode("utf-8")) == text


def test_html_to_text_keeps_structure_and_quotes() -> None:
    html = (
        "<div>Hi.<br></div><div><br></div><div>I am <b>fine</b>.</div><ul><li>one</li><li>two</li></ul>"
        "<ol><li>a</li></ol><table><tr><td>x</td><td>y</td></tr></table>"
        "<blockquote>q1<br>q2<blockquote>deep</blockquote></blockquote>see <a href='https://x.example/r'>the report</a>"
        "<script>alert(1)</script><hr>"
    )
    assert html_to_text(html) == (
        "Hi.\n\nI am fine.\n\n- one\n- two\n\n1. a\n\nx y\n\n> q1\n> q2\n>\n> > deep\n\n"
        "see the report <https://x.example/r>\n" + "_" * 32
    )


def test_html_too_deep_for_the_parser_still_gives_its_words() -> None:
    assert html_to_text("<div>" * 5000 + "deep &amp; more") == "deep & more"


# Text of each country's own code pages, as a mail labelled x-unknown (or not at all) brings it.
GUESSED = [
    ("Kako klaster pomaže kućama? Također, Perić i Đurić šalju ponude.", "cp1250"),
    ("Kako klaster pomaže kućama? Također, Perić i Đurić šalju ponude.", "iso-8859-2"),
    ("Kako klaster pomaže malim proizvođačima nameštaja u izvozu?", "cp1250"),
    ("Kümelenme ihracatta küçük üreticilere nasıl yardım eder? Şirketimiz İstanbul'da.", "cp1254"),
    ("Ağ üyeleri güveni nasıl kurar? Teşekkürler, Ayşe Yılmaz.", "iso-8859-9"),
    ("Какую роль играют университеты в социальной сети кластера?", "cp1251"),
    ("Каква е ролята на университетите в мрежата на клъстера?", "cp1251"),
    ("Какую роль играют университеты в социальной сети кластера?", "koi8_r"),
    ("Каква е ролята на университетите в мрежата на клъстера?", "iso-8859-5"),
    ("Какая роль университетов? Спасибо", "koi8_r"),
    ("Kolika je uloga univerziteta u društvenoj mreži? Hvala, Milan Jovanović", "cp1250"),
    ("Quel rôle jouent les universités? Grüße, Müller", "cp1252"),
]


@pytest.mark.parametrize(("text", "charset"), GUESSED, ids=[c for _, c in GUESSED])
def test_charset_guessing_reads_the_five_countries_code_pages(text: str, charset: str) -> None:
    assert decode_guessing(text.encode(charset)) == text


def test_a_body_labelled_x_unknown_is_read_in_its_real_code_page() -> None:
    body = "Kako klaster pomaže kućama? Također, Perić piše."
    raw = (
        b"From: Marko <marko@drvo.example.hr>\r\nTo: qa@clusters.example.org\r\n"
        b"Subject: [VC2] Pitanje\r\nMessage-ID: <x-unknown@drvo.example.hr>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="x-unknown"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
        + body.encode("cp1250")
        + b"\r\n"
    )
    assert parse_mail(raw).text.strip() == body


# (text, the code page it is in, the label the sender's client put on it)
MISLABELLED = [
    ("Kako klaster pomaže kućama? Također, Perić i Đurić šalju ponude.", "cp1250", "iso-8859-1"),
    ("Kako klaster pomaže kućama? Također, Perić šalje ponude.", "iso-8859-2", "windows-1250"),
    ("Kümelenme ihracatta küçük üreticilere nasıl yardım eder? Şirketimiz.", "cp1254", "latin1"),
    ("Каква е ролята на университетите в мрежата на клъстера?", "iso-8859-5", "windows-1251"),
    ("Какую роль играют университеты в социальной сети кластера?", "koi8_r", "windows-1251"),
    ("Какую роль играют университеты в социальной сети кластера?", "cp1251", "koi8-r"),
    ("Kako klaster pomaže kućama?", "utf-8", "iso-8859-2"),
]
# Labels that tell the truth stay believed.
TRUE_LABELS = [
    ("Quel rôle jouent les universités? Grüße, Müller", "cp1252", "windows-1252"),
    ("Kako klaster pomaže kućama? Također, Perić.", "cp1250", "windows-1250"),
    ("Ağ üyeleri güveni nasıl kurar? Teşekkürler, Ayşe Yılmaz.", "cp1254", "iso-8859-9"),
    ("Какую роль играют университеты?", "koi8_r", "koi8-r"),
]


@pytest.mark.parametrize(
    ("text", "charset", "label"), MISLABELLED + TRUE_LABELS, ids=lambda v: str(v)[:12]
)
def test_a_wrong_label_is_doubted_and_a_true_one_believed(
    text: str, charset: str, label: str
) -> None:
    assert decode_with(text.encode(charset), label) == text
