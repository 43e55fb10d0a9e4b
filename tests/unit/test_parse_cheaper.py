"""Cheaper ways through parse_mail, each against the way it was first written.

parse_mail now runs mail-parser without its unused second summary, fetches and decodes every
header once, and skips decoding and address parsing where there is nothing to do. The first
version of parse_mail is kept here, word for word but for those steps, as the reference.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from email.message import Message
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import lxml.html
import mailparser
import pytest

from qa_mailer.addresses import _PLAIN_LIST, addresses_in, names_and_addresses, normalise
from qa_mailer.parse import ParsedMail, ParseError, html, parse_mail
from qa_mailer.parse.body import joined, recover_bodies, repair_charset
from qa_mailer.parse.charsets import decode_guessing, guess_charset
from qa_mailer.parse.headers import DecodedHeaders, date_of, decoded, first_message_id, message_ids
from qa_mailer.parse.lean import _MailParser
from qa_mailer.parse.mail import _attachments, _clean, _first_address
from qa_mailer.replies import html_quotes
from tests.helpers import DATA

MAILS = sorted(
    path
    for folder in ("mail", "mime", "replies")
    for path in (DATA / folder).rglob("*")
    if path.suffix in {".eml", ".txt"} and "expected" not in path.parts
)
# Headers built to trip decoding: encoded words in odd charsets, 8-bit bytes, folding, NULs.
ODD_HEADERS = (
    b"From: =?windows-1251?B?yOLg7SDP5fLw7uI=?= <ivan@zavod.example.ru>\r\n"
    b"To: =?utf-8?q?Ana_Horvat?= <ana@drvo.example.hr>, qa@clusters.example.org\r\n"
    b"Cc: undisclosed-recipients:;\r\n"
    b'Reply-To: "Ana, H." <ana@drvo.example.hr>\r\n'
    b"Subject: =?koi8-r?b?8NLJ18XU?= and =?x-unknown?q?x?= plain =?utf-8?b?broken\r\n"
    b"X-Eight-Bit: \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xff\r\n"
    b"X-Folded: one\r\n two\r\n\tthree\r\n"
    b"Message-ID: <a@b>\r\nIn-Reply-To: <x@y> <z@w>\r\nReferences: <r1@x>\r\n <r2@x>\r\n"
    b"Date: Thu, 03 Dec 2026 13:05:00 +0200\r\nsubject: second subject\r\n"
    b"X-Nul: a\x00b\r\n\r\nbody\r\n"
)

# What mail-parser finds wrong in the header fields it parses itself (see parse/lean.py).
_HEADER_DEFECTS = {"AddressHeaderDefect", "DateHeaderDefect", "ReceivedHeaderDefect"}
_HEADER_DEFECT_KEYS = {"address-headers", "date-headers", "received-headers"}


def _all_values(message: Message, name: str) -> list[str]:
    return [decoded(v) for v in message.get_all(name) or []]


def _addresses_first(*header_values: str | None) -> list[str]:
    values = [value for value in header_values if value]
    return [normalise(address) for _, address in getaddresses(values) if "@" in address]


def _parse_mail_first(raw: bytes) -> ParsedMail:
    """parse_mail as first written (stock mail-parser, every header fetched per use)."""
    if not raw.strip():
        raise ParseError("the message is empty")
    try:
        parsed = mailparser.parse_from_bytes(raw)
    except Exception as exc:
        raise ParseError(f"mail-parser could not read the message: {exc!r}") from exc
    message: Message | None = parsed.message
    if message is None or not message.keys():
        raise ParseError("the message has no headers (is it MIME mail at all?)")
    text_plain = repair_charset(message, "text/plain", joined(parsed.text_plain))
    html = repair_charset(message, "text/html", joined(parsed.text_html))
    if text_plain is None and html is None:
        text_plain, html = recover_bodies(message)
    text_plain, html = _clean(text_plain), _clean(html)
    from_name, from_address = _first_address(message.get_all("From") or [])
    return ParsedMail(
        message_id=first_message_id(message.get("Message-ID")),
        subject=_clean(decoded(message.get("Subject", ""))).strip(),
        from_address=from_address,
        from_name=from_name,
        to=tuple(_addresses_first(*_all_values(message, "To"))),
        cc=tuple(_addresses_first(*_all_values(message, "Cc"))),
        reply_to=tuple(_addresses_first(*_all_values(message, "Reply-To"))),
        delivered_to=tuple(
            _addresses_first(
                *_all_values(message, "Delivered-To"), *_all_values(message, "X-Original-To")
            )
        ),
        in_reply_to=tuple(message_ids(_all_values(message, "In-Reply-To"))),
        references=tuple(message_ids(_all_values(message, "References"))),
        date=date_of(message.get("Date")),
        text_plain=text_plain,
        html=html,
        content_type=message.get_content_type(),
        attachments=tuple(_attachments(parsed.attachments)),
        # The lean parser does not parse the address, Date and Received headers itself, so
        # it reports no defects of theirs (parse_mail reads those headers its own way).
        defects=tuple(sorted(str(d) for d in parsed.defects_categories - _HEADER_DEFECTS)),
        headers=tuple((key, _clean(decoded(value))) for key, value in message.items()),
    )


def _outcome(parse: Any, raw: bytes) -> tuple[ParsedMail | None, str | None]:
    try:
        return parse(raw), None
    except ParseError as exc:
        return None, str(exc)


@pytest.mark.parametrize("path", MAILS, ids=lambda p: str(p.relative_to(DATA)))
def test_parse_mail_gives_what_it_gave(path: Path) -> None:
    raw = path.read_bytes()
    assert _outcome(parse_mail, raw) == _outcome(_parse_mail_first, raw)


def test_odd_headers_decode_as_they_did() -> None:
    assert _outcome(parse_mail, ODD_HEADERS) == _outcome(_parse_mail_first, ODD_HEADERS)


@pytest.mark.parametrize("path", [*MAILS, None], ids=lambda p: p.name if p else "odd headers")
def test_decoded_headers_are_what_get_and_get_all_give(path: Path | None) -> None:
    raw = path.read_bytes() if path else ODD_HEADERS
    message = mailparser.parse_from_bytes(raw).message
    headers = DecodedHeaders(message)
    names = {name for name, _, _ in headers.items} | {"missing", "MESSAGE-id", "subject"}
    for name in names:
        for spelling in (name, name.lower(), name.upper()):
            assert str(headers.first(spelling)) == str(message.get(spelling))
            assert headers.texts(spelling) == _all_values(message, spelling)
    assert [(n, t) for n, _, t in headers.items] == [(n, decoded(v)) for n, v in message.items()]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("", ""),
        ("plain", "plain"),
        ("=?", "=?"),
        ("a =? b", "a =? b"),
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?utf-8?b?0JjQstCw0L0=?= Petrov", "Иван Petrov"),
        # White space between encoded words goes; between a word and plain text it stays.
        ("=?utf-8?b?0J/RgNC4?= =?utf-8?b?0LLQtdGC?=", "Привет"),
        ("malim\r\n =?utf-8?b?cHJvaXp2b8SRYcSNaW1h?=", "malim proizvođačima"),
        ("=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c"),
        # A character split across two words in one charset is joined before decoding.
        ("a =?UTF-8?Q?=D0=9F=D1?= =?UTF-8?Q?=80=D0=B8?= b", "a При b"),
        ("=?utf-8*en?q?hi?=", "hi"),
        # Broken base64: the whole groups decode; a word with nothing readable stays as written.
        ("=?utf-8?b?QUFBQ?= Pitanje", "AAA Pitanje"),
        ("=?utf-8?q?Ko=C5=A1?= =?utf-8?b?!!!?= x", "Koš =?utf-8?b?!!!?= x"),
        ("=?utf-8?b?not base64?=", "=?utf-8?b?not base64?="),
        ("=?a\x00b?q?x?=", "x"),
        # No line break or NUL survives, hidden in an encoded word or not.
        ("=?utf-8?q?a=0D=0ABcc:_x?=", "a Bcc: x"),
        ("a\x00b", "ab"),
        ("one\r\n two\r\n\tthree", "one two\tthree"),
        ("\udcff surrogate", "\udcff surrogate"),
    ],
)
def test_decoded_reads_what_can_be_read_and_never_raises(value: str | None, text: str) -> None:
    assert decoded(value) == text


def _address_cases(rng: random.Random) -> list[tuple[str | None, ...]]:
    # Structured: names and addresses of plain and special characters, in lists.
    # Plain choices four times as often as special ones.
    words = [
        "Ana",
        "Horvat",
        "Иван",
        "Q&A",
        "",
        "=?utf-8?b?0JjQstCw0L0=?=",
        "Ana \t Horvat",
    ] * 4 + [
        "A.",
        '"Ana, H."',
        "(note)",
        "a\u2003b",
    ]
    locals_ = ["a", "ana.horvat", "qa+vc3", "Ana", "a_b%c-d"] * 4 + ["a..b", ".a", "a.", "ж"]
    domains = ["b.example.org", "B.EXAMPLE.ORG", "localhost"] * 4 + ["b..c", "b.", "[1.2.3.4]"]
    separators = [",", ", ", " ,"] * 4 + [",,", ";", " "]

    def item() -> str:
        address = f"{rng.choice(locals_)}@{rng.choice(domains)}"
        name = " ".join(rng.choice(words) for _ in range(rng.randint(0, 2)))
        shape = rng.choice(["{a}", "{n} <{a}>", "<{a}>", "{n}<{a}>", " {a} ", "{n} <{a}> ", "{n}"])
        return shape.format(a=address, n=name)

    def listed() -> str:
        text = item()
        for _ in range(rng.randint(0, 2)):
            text += rng.choice(separators) + item()
        return text

    # Random: characters the parser treats specially, and some it does not.
    alphabet = 'aZ09.@<>,;: \t"()[]\\_%+-ж\u2003\r\n'
    noise = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(300)]
    cases: list[tuple[str | None, ...]] = [(), (None,), ("",), (" ",)]
    cases.extend((listed(),) for _ in range(1500))
    cases.extend((listed(), listed()) for _ in range(300))
    cases.extend((text,) for text in noise)
    return cases


def test_addresses_in_gives_what_getaddresses_gives() -> None:
    plain = 0
    for values in _address_cases(random.Random(5)):
        assert addresses_in(*values) == _addresses_first(*values), values
        plain += bool(_PLAIN_LIST.fullmatch(", ".join(v for v in values if v)))
    # Both ways taken many times.
    assert 300 < plain < 1800


def test_names_and_addresses_gives_what_getaddresses_gives() -> None:
    # The From header's sender is read with names and addresses (parse_mail's _first_address).
    plain = 0
    for values in _address_cases(random.Random(7)):
        given = [value for value in values if value]
        assert names_and_addresses(given) == getaddresses(given), given
        plain += bool(given and _PLAIN_LIST.fullmatch(", ".join(given)))
    assert 300 < plain < 1800


@pytest.mark.parametrize("path", MAILS, ids=lambda p: str(p.relative_to(DATA)))
def test_the_lean_mail_parser_reads_what_mail_parser_reads(path: Path) -> None:
    raw = path.read_bytes()
    try:
        stock = mailparser.parse_from_bytes(raw)
    except Exception as exc:
        with pytest.raises(type(exc)):
            _MailParser.from_bytes(raw)
        return
    lean = _MailParser.from_bytes(raw)
    for name in ("text_plain", "text_html", "text_not_managed"):
        assert getattr(lean, name) == getattr(stock, name), name
    # The defects of the header fields it does not parse are left out; every other is kept.
    assert lean.defects == [
        defect for defect in stock.defects if not set(defect) & _HEADER_DEFECT_KEYS
    ]
    assert lean.defects_categories == stock.defects_categories - _HEADER_DEFECTS
    assert not lean.address_header_defects and not lean.date_header_defects
    # Attachments without a name get a random one; the rest must be the same.
    assert [_named(a) for a in lean.attachments] == [_named(a) for a in stock.attachments]
    # The summaries it leaves out.
    assert lean.mail == lean.mail_partial == {} and stock.mail_partial


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: =?a\x00b?q?x?=",
        b"X-Anything: plain =?utf-8?q?caf=C3=A9?= and =?a\x00b?b?eA==?=",
        b"X-Anything: =?a\x00b?q??=",
        b"From: =?a\x00b?q?Ana?= <ana@drvo.example.hr>",
        b"To: =?a\x00b?q?QA?= <qa@clusters.example.org>",
        b"Date: =?a\x00b?q?x?=",
        b"Received: =?a\x00b?q?x?=",
        b"Defects: =?a\x00b?q?x?=",
        b"Body: =?a\x00b?q?x?=",
        b"Subject: =?x-unknown?q?x?=",
        b"Subject: =?utf-8?b?not base64?=",
        b"Subject: \xd0\x9f =?a\x00b?q?x?=",
    ],
)
def test_a_hostile_encoded_word_fails_nothing(header: bytes) -> None:
    raw = b"From: a@b.example.org\r\n" + header + b"\r\n\r\nbody\r\n"
    # mail-parser's own summary raises on some of these; the lean parser builds none.
    lean = _MailParser.from_bytes(raw)
    assert [text.strip() for text in lean.text_plain] == ["body"]
    parsed = parse_mail(raw)
    assert parsed.from_address in {"a@b.example.org", "ana@drvo.example.hr"}
    assert parsed.text_plain is not None and parsed.text_plain.strip() == "body"
    assert all("\x00" not in text for _, text in parsed.headers)
    if header.startswith(b"Subject"):
        assert parsed.subject and "\ufffd" not in parsed.subject


def _named(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _named(v) for k, v in value.items() if k not in {"filename", "safe_filename"}}
    if isinstance(value, list):
        return [_named(v) for v in value]
    return value


def _decode_guessing_first(payload: bytes) -> str:
    """decode_guessing() as first written, with no shortcut for ASCII."""
    as_utf8 = payload.decode("utf-8", "replace")
    high = [b for b in payload if b >= 0x80]
    if as_utf8.count("\ufffd") * 50 <= len(high):
        return as_utf8
    cyrillic = sum(1 for b in high if b >= 0xC0)
    ascii_letters = sum(1 for b in payload if 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A)
    if cyrillic / len(high) > 0.7 and len(high) > ascii_letters:
        upper_half = sum(1 for b in high if b >= 0xE0)
        return payload.decode("cp1251" if upper_half * 2 >= cyrillic else "koi8_r", "replace")
    return payload.decode("cp1252", "replace")


@pytest.mark.parametrize(
    "payload",
    # The Latin code pages are told apart since (tests/unit/test_parse.py): not compared here.
    [b"", b"plain ASCII <ivan@zavod.example.ru>", bytes(range(128)), b"\x80"],
)
def test_decode_guessing_gives_what_it_gave(payload: bytes) -> None:
    assert decode_guessing(payload) == _decode_guessing_first(payload)


@pytest.mark.parametrize("path", [*MAILS, None], ids=lambda p: p.name if p else "odd headers")
def test_header_lookups_find_what_a_scan_finds(path: Path | None) -> None:
    try:
        mail = parse_mail(path.read_bytes() if path else ODD_HEADERS)
    except ParseError:
        return
    names = {name for name, _ in mail.headers} | {"missing", "X-LOOP", "list-id"}
    for name in names:
        for spelling in (name, name.lower(), name.upper()):
            wanted = spelling.lower()
            scan = [value for key, value in mail.headers if key.lower() == wanted]
            assert mail.header_all(spelling) == scan
            assert mail.header(spelling) == (scan[0] if scan else None)
    # The answers are the caller's to keep: changing one changes no later answer.
    mail.header_all("received").append("x")
    assert "x" not in mail.header_all("received")


# The HTML renderer as first written: one generator per element level.


def _element_to_text_first(element: Any) -> str:
    try:
        text = html._join(_render_first(element, preformatted=False))
    except RecursionError:
        text = html._WHITESPACE.sub(" ", element.text_content())
    return html._tidy(text)


def _render_first(element: Any, *, preformatted: bool) -> Iterator[Any]:
    tag = element.tag if isinstance(element.tag, str) else ""
    tag = tag.lower()
    if tag in html._INVISIBLE or not tag:
        yield from _text_first(element.tail, preformatted)
        return
    if tag == "br":
        yield "\n"
    elif tag == "hr":
        yield from (html._LINE, html._Raw(html.RULE_LINE), html._LINE)
    elif tag == "blockquote" and not html._is_indentation(element):
        inner = html._tidy(html._join(_children_first(element, preformatted)))
        if inner:
            quoted = "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
            yield from (html._PARAGRAPH, html._Raw(quoted), html._PARAGRAPH)
    elif tag == "pre":
        inner = element.text_content()
        yield from (html._PARAGRAPH, html._Raw(inner.strip("\n")), html._PARAGRAPH)
    elif tag == "img":
        pass
    else:
        yield from _container_first(element, tag, preformatted)
    yield from _text_first(element.tail, preformatted)


def _container_first(element: Any, tag: str, preformatted: bool) -> Iterator[Any]:
    edge = (
        html._PARAGRAPH if tag in html._PARAGRAPHS else html._LINE if tag in html._BLOCKS else None
    )
    if edge is not None:
        yield edge
    if tag == "li":
        yield html._list_marker(element)
    yield from _children_first(element, preformatted)
    if tag in {"td", "th"}:
        yield " "
    if tag == "a":
        yield from html._link_target(element)
    if edge is not None:
        yield edge


def _children_first(element: Any, preformatted: bool) -> Iterator[Any]:
    yield from _text_first(element.text, preformatted)
    for child in element:
        yield from _render_first(child, preformatted=preformatted)


def _text_first(text: str | None, preformatted: bool) -> Iterator[Any]:
    if text:
        yield text if preformatted else html._WHITESPACE.sub(" ", text)


def _html_bodies() -> list[str]:
    bodies = [
        "<div>Hi.<br></div><div><br></div><div>I am <b>fine</b>.</div><ul><li>one</li><li>two</li>"
        "</ul><ol><li>a</li><li>b</li></ol><table><tr><td>x</td><th>y</th></tr></table>"
        "<blockquote>q1<br>q2<blockquote>deep</blockquote></blockquote>see "
        "<a href='https://x.example/r'>the report</a> <a href='https://x.example/r'>https://x.example/r</a>"
        "<script>alert(1)</script><hr><pre>  code\n\n  more\n</pre><!-- comment --><img src=x>tail",
        "<blockquote style='border:none'>indented</blockquote><blockquote type=cite>cited</blockquote>",
        "<p>  lots   of\n\n white\t space  </p><p></p><p>\xa0</p><h1>Title</h1><dl><dt>t</dt><dd>d</dd></dl>",
        "<div class='gmail_quote'><div class='gmail_attr'>On Mon, Ana wrote:</div>"
        "<blockquote class='gmail_quote'>old<br>text</blockquote></div>",
        "<blockquote>" * 300 + "deep quote" + "</blockquote>" * 300,
        "<div>" * 300 + "deep div" + "</div>" * 300,
        "<span>" * 254 + "254" + "<br>" * 3,
        "<ul>" + "<li>item</li>" * 50 + "</ul>",
        "<table>" + "<tr><td>a</td><td>b</td></tr>" * 30 + "</table>",
        "plain text, no tags",
        "<a href='mailto:a@b.c'>mail</a><a>no href</a><a href='http://x'></a>",
        "<div id='divRplyFwdMsg'>From: Ana</div><div style='border-top:solid #E1E1E1 1.0pt'>"
        "<p><b>From:</b> Ana<br><b>Sent:</b> Monday</p></div><hr id='stopSpelling'>old"
        "<div class='yahoo_quoted'>y</div><div id='olk_src_body_section'>o</div>"
        "<div class='moz-cite-prefix'>On 1 May, Ana wrote:</div><p class='' id='' style=''>e</p>",
    ]
    for path in sorted(DATA.rglob("*")):
        if path.suffix == ".html" and "expected" not in path.parts:
            bodies.append(path.read_text(encoding="utf-8", errors="replace"))
    for path in MAILS:
        try:
            mail = parse_mail(path.read_bytes())
        except Exception:
            continue
        if mail.html:
            bodies.append(mail.html)
    return bodies


def test_the_html_renderer_gives_what_it_gave() -> None:
    for body in _html_bodies():
        root = html.parse_html(body)
        if root is None:
            continue
        assert html.element_to_text(root) == _element_to_text_first(root), body[:200]
        marked, marked_first = html.parse_html(body), html.parse_html(body)
        assert marked is not None and marked_first is not None
        html_quotes._mark(marked)
        _mark_first(marked_first)
        assert lxml.html.tostring(marked) == lxml.html.tostring(marked_first), body[:200]
        assert html.element_to_text(marked) == _element_to_text_first(marked), body[:200]


def _mark_first(root: Any) -> None:
    """html_quotes._mark as first written: every check on every element."""
    found = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if (
            html_quotes._is_attribution(element)
            or html_quotes._is_divider(element)
            or html_quotes._is_bordered_header(element)
        ):
            found.append(element)
        elif html_quotes._starts_history(element):
            element.addprevious(html_quotes._mark_element())
    for element in found:
        html_quotes._replace_with_mark(element)


def test_single_spaced_text_is_what_the_whitespace_pattern_leaves_alone() -> None:
    assert [c for c in " \t\r\n\f\v\xa0\u200b" if c.isprintable()] == [" "]
    rng = random.Random(11)
    for _ in range(20000):
        text = "".join(rng.choice("ab \t\r\n\f\v\xa0\u200b\u2003\x00é") for _ in range(6))
        if html._single_spaced(text):
            assert html._WHITESPACE.sub(" ", text) == text, repr(text)


def _utf8_as_first_written(payload: bytes) -> bool:
    """guess_charset's UTF-8 rule as first written: a UTF-8 sequence in it, and at most one
    replacement character per 50 high bytes."""
    high = payload.translate(None, bytes(range(0x80)))
    return re.search(rb"[\xc2-\xf4][\x80-\xbf]", payload) is not None and (
        payload.decode("utf-8", "replace").count("\ufffd") * 50 <= len(high)
    )


def _damaged(text: str, every: int) -> bytes:
    """``text`` in UTF-8 with one byte of every ``every`` high bytes dropped."""
    data = bytearray(text.encode("utf-8"))
    high = [i for i, b in enumerate(data) if b >= 0x80]
    for i in reversed(high[::every]):
        del data[i]
    return bytes(data)


CYRILLIC = "Какую роль играют университеты в социальной сети кластера? " * 8
LATIN2 = "Kako klaster pomaže kućama? Također, Perić i Đurić šalju ponude. " * 8
UTF8_OR_NOT = [
    *(CYRILLIC.encode(charset) for charset in ("utf-8", "cp1251", "koi8_r", "iso-8859-5")),
    *(LATIN2.encode(charset) for charset in ("utf-8", "cp1250", "iso-8859-2")),
    *(_damaged(text, every) for text in (CYRILLIC, LATIN2) for every in (1, 2, 10, 40, 60, 400)),
    b"\xc3", b"\xc3\xa9" + b"\xe0" * 3, b"\xff\xfe" * 40, b"\xc3\xa9" * 60 + b"\xe0",
]  # fmt: skip


@pytest.mark.parametrize("payload", UTF8_OR_NOT)
def test_utf8_is_told_as_the_first_rule_told_it(payload: bytes) -> None:
    # The strict decode and the count of lead bytes come first now, only to save the work.
    assert (guess_charset(payload) == "utf-8") == _utf8_as_first_written(payload)
