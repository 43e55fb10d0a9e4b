"""The mail the CPU benchmark and the equivalence check run over: one definition for both.

- ``questions(n)``: a realistic mix of participants' questions, the same every run (fixed
  dates, Message-IDs and seed): the one-line Croatian question of bench_ingest.py, questions
  written in paragraphs (some with a signature, a phone tagline or the quoted mail they answer),
  8-bit windows-1251, KOI8-R and ISO-8859-2 mail with RFC 2047 headers, and HTML-only mail;
- ``data_mails()``: every .eml/.txt mail under tests/data (our own, CPython's and SpamScope's);
- ``reply_inputs()``: every reply body of tests/data/replies with the questions it answers.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from qa_mailer.replies import QuestionRef
from qa_mailer.replies.files import load_questions, load_reply_file

ROOT = Path(__file__).resolve().parent.parent

DATA = ROOT / "tests" / "data"
QA = "qa@clusters.example.org"
_START = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

SENDERS = [
    ("Ana Horvat", "ana@drvo.example.hr"),
    ("Петар Иванов", "petar@mebeli.example.bg"),
    ("Иван Петров", "ivan@zavod.example.ru"),
    ("Ayşe Yılmaz", "ayse@mobilya.example.com.tr"),
]
_CROATIAN = "Kako klaster pomaže malim proizvođačima namještaja u izvozu? "
_PARAGRAPHS = {
    "hr": [
        "Poštovani, radim u maloj tvrtki koja proizvodi namještaj od masivnog drva i zanima me "
        "kako se uključiti u klaster i što to donosi u izvozu na tržišta Europske unije.",
        "Imamo dvadeset zaposlenih i do sada smo prodavali samo u Hrvatskoj. Koliko vremena "
        "treba da se vide prvi rezultati, i tko plaća zajedničke sajmove?",
        "Zanima me i kako klaster dijeli troškove certifikacije (FSC, CE) među članovima.",
    ],
    "ru": [
        "Здравствуйте! Я работаю на небольшом мебельном предприятии и хотел бы понять, как "
        "кластер помогает малым производителям выходить на экспорт.",
        "Какие университеты помогают кластеру и как распределяются расходы на общие выставки "
        "и сертификацию? Кто принимает решения о совместных проектах?",
        "Сколько времени обычно проходит до первых экспортных контрактов?",
    ],
    "tr": [
        "Merhaba, İstanbul'da küçük bir mobilya şirketinde çalışıyorum. Bir küme ihracata "
        "nasıl yardım eder ve üyelik için hangi şartlar gerekir?",
        "Ortak fuar masrafları ve sertifikalar üyeler arasında nasıl paylaşılıyor?",
    ],
}
_CLOSINGS = {"hr": "Lijep pozdrav,", "ru": "С уважением,", "tr": "Saygılarımla,"}
_TAGLINES = {
    "hr": "Poslano s mog iPhonea",
    "ru": "Отправлено с iPhone",
    "tr": "iPhone'umdan gönderildi",
}


def questions(n: int = 2000) -> list[tuple[str, bytes]]:
    """``n`` questions in the mix described above as (kind, raw mail), identical on every call."""
    rng = random.Random(20261203)
    makers = {
        "one-line": _one_line_question,
        "paragraphs": _paragraph_question,
        "long-3k": _long_question,
        "follow-up": _follow_up_question,
        "cp1251": _cp1251_question,
        "koi8-r": _koi8r_question,
        "latin-2": _latin2_question,
        "html-only": _html_only_question,
        "alternative": _alternative_question,
    }
    # The bench_ingest.py question twice as often as the others.
    kinds = ["one-line", *makers]
    return [(kinds[i % len(kinds)], makers[kinds[i % len(kinds)]](i, rng)) for i in range(n)]


def _message(i: int, sender: tuple[str, str], subject: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"{sender[0]} <{sender[1]}>"
    mail["To"] = QA
    mail["Subject"] = subject
    mail["Date"] = format_datetime(_START + timedelta(minutes=i))
    mail["Message-ID"] = f"<q{i}.bench@{sender[1].partition('@')[2]}>"
    return mail


def _one_line_question(i: int, rng: random.Random) -> bytes:
    # Exactly what bench_ingest.py's questions() sends, with fixed date and Message-ID.
    mail = _message(i, ("", SENDERS[i % 4][1]), f"[VC{i % 5 + 1}] Pitanje {i}")
    del mail["From"]
    mail["From"] = SENDERS[i % 4][1]
    mail.set_content(f"{i}: {_CROATIAN * 20}")
    return mail.as_bytes()


def _body(language: str, rng: random.Random, *, wrap: int = 72) -> str:
    # Paragraphs wrapped like a mail client wraps them, a closing and a name, sometimes a
    # signature or a phone tagline under it.
    paragraphs = list(_PARAGRAPHS[language]) * 2
    rng.shuffle(paragraphs)
    lines: list[str] = []
    for paragraph in paragraphs[: rng.randint(3, 6)]:
        lines.extend(_wrapped(paragraph, wrap))
        lines.append("")
    lines.extend([_CLOSINGS[language], SENDERS[0][0] if language == "hr" else SENDERS[2][0]])
    if rng.random() < 0.3:
        lines.extend(["", "-- ", "Drvo d.o.o. | +385 1 234 5678 | www.drvo.example.hr"])
    if rng.random() < 0.3:
        lines.extend(["", rng.choice([_TAGLINES[language], "Sent from my iPhone"])])
    return "\n".join(lines) + "\n"


def _wrapped(paragraph: str, width: int) -> Iterator[str]:
    line = ""
    for word in paragraph.split():
        if line and len(line) + 1 + len(word) > width:
            yield line
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        yield line


def _paragraph_question(i: int, rng: random.Random) -> bytes:
    language = rng.choice(["hr", "ru", "tr"])
    mail = _message(i, SENDERS[i % 4], f"[VC{i % 5 + 1}] Pitanje o klasteru {i}")
    mail.set_content(_body(language, rng))
    return mail.as_bytes()


def _long_question(i: int, rng: random.Random) -> bytes:
    # About 3 KB of plain text in paragraphs, as a participant with a lot to ask writes.
    mail = _message(i, SENDERS[0], f"[VC{i % 5 + 1}] Nekoliko pitanja o klasteru {i}")
    text = "\n".join(_body("hr", rng).rstrip("\n") for _ in range(4))
    mail.set_content(text + "\n", cte="8bit")
    return mail.as_bytes()


def _follow_up_question(i: int, rng: random.Random) -> bytes:
    # A participant answering the acknowledgement: new text on top, the quoted mail below.
    sender = SENDERS[i % 4]
    mail = _message(i, sender, f"Re: [VC{i % 5 + 1}] Pitanje {i - 4}")
    mail["In-Reply-To"] = f"<ack{i}@clusters.example.org>"
    mail["References"] = f"<q{i - 4}.bench@drvo.example.hr> <ack{i}@clusters.example.org>"
    quoted = _body("hr", rng).rstrip("\n").split("\n")
    body = [
        "Hvala! Još jedno pitanje: tko plaća zajedničke sajmove?",
        "",
        "Ana",
        "",
        f"On Thu, 3 Dec 2026 at 10:{i % 60:02d}, Clusters Q&A <{QA}> wrote:",
        *(f"> {line}" if line else ">" for line in quoted),
    ]
    mail.set_content("\n".join(body) + "\n")
    return mail.as_bytes()


def _eight_bit(i: int, rng: random.Random, charset: str, language: str) -> bytes:
    sender = SENDERS[2] if language == "ru" else SENDERS[0]
    subject = "Вопрос о кластере" if language == "ru" else "Pitanje: tko upravlja klasterom?"
    head = [
        f"From: {Header(sender[0], charset).encode()} <{sender[1]}>",
        f"To: {QA}",
        f"Subject: {Header(f'{subject} {i}', charset).encode()}",
        f"Date: {format_datetime(_START + timedelta(minutes=i))}",
        f"Message-ID: <q{i}.{charset}@example.org>",
        "MIME-Version: 1.0",
        f"Content-Type: text/plain; charset={charset}",
        "Content-Transfer-Encoding: 8bit",
    ]
    body = _body(language, rng) if language == "ru" else _latin2_body(rng)
    return (
        "\r\n".join(head).encode("ascii") + b"\r\n\r\n" + body.replace("\n", "\r\n").encode(charset)
    )


def _latin2_body(rng: random.Random) -> str:
    return _body("hr", rng) + "Općina ili poduzetnici? Žurno, đače!\n"


def _cp1251_question(i: int, rng: random.Random) -> bytes:
    return _eight_bit(i, rng, "windows-1251", "ru")


def _koi8r_question(i: int, rng: random.Random) -> bytes:
    return _eight_bit(i, rng, "koi8-r", "ru")


def _latin2_question(i: int, rng: random.Random) -> bytes:
    return _eight_bit(i, rng, "iso-8859-2", "hr")


def _html(text: str) -> str:
    paragraphs = "".join(
        f"<p>{'<br>'.join(block.split(chr(10)))}</p>" for block in text.strip().split("\n\n")
    )
    return (
        '<html><head><meta charset="utf-8"><style>p{margin:0}</style></head>'
        f'<body><div dir="ltr">{paragraphs}</div></body></html>'
    )


def _html_only_question(i: int, rng: random.Random) -> bytes:
    language = rng.choice(["hr", "ru", "tr"])
    mail = _message(i, SENDERS[i % 4], f"[VC{i % 5 + 1}] HTML {i}")
    mail.set_content(_html(_body(language, rng)), subtype="html")
    return mail.as_bytes()


def _alternative_question(i: int, rng: random.Random) -> bytes:
    language = rng.choice(["hr", "ru", "tr"])
    text = _body(language, rng)
    mail = _message(i, SENDERS[i % 4], f"[VC{i % 5 + 1}] Pitanje {i}")
    mail.set_content(text)
    mail.add_alternative(_html(text), subtype="html")
    # The generator would draw a random boundary; a fixed one keeps the bytes the same.
    mail.set_boundary(f"==bench{i}==")
    return mail.as_bytes()


def data_mails() -> dict[str, bytes]:
    """Every mail file under tests/data, by its path there."""
    found: dict[str, bytes] = {}
    for folder in ("mail", "mime"):
        for path in sorted((DATA / folder).iterdir()):
            if path.suffix in {".eml", ".txt"}:
                found[f"{folder}/{path.name}"] = path.read_bytes()
    for path in sorted((DATA / "replies").rglob("*.eml")):
        found[str(path.relative_to(DATA))] = path.read_bytes()
    return found


def reply_inputs() -> list[tuple[str, str | None, str | None, tuple[QuestionRef, ...]]]:
    """Every reply of tests/data/replies: (name, text, html, questions it answers)."""
    found: list[tuple[str, str | None, str | None, tuple[QuestionRef, ...]]] = []
    folder = DATA / "replies"
    for path in sorted(folder.rglob("*")):
        if path.suffix not in {".txt", ".html", ".eml"} or not path.is_file():
            continue
        if "expected" in path.parts or "questions" in path.parts:
            continue
        asked: tuple[QuestionRef, ...] = ()
        if path.parent.name == "own":
            parts = path.stem.split("_")
            name = "_".join(parts[:2]) if parts[0] == "sr" else parts[0]
            asked = load_questions(folder / "own" / "questions" / f"{name}.json")
        text, html = load_reply_file(path)
        found.append((str(path.relative_to(folder)), text, html, asked))
    return found
