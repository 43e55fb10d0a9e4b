"""The demo's mail: what the participants send and what the expert answers.

Each question comes as a real client would send it: Cyrillic in windows-1251 and KOI8-R,
Croatian in ISO-8859-2, Turkish as HTML only in ISO-8859-9, Serbian with quoted history and a
phone tagline below it. One auto-reply arrives as well, which must never be answered.
"""

from __future__ import annotations

import base64
from email.header import Header
from email.utils import format_datetime, make_msgid

from qa_mailer.clock import SystemClock
from qa_mailer.config import Config


def _mail(
    sender: str,
    name: str,
    subject: str,
    body: str,
    charset: str,
    *,
    config: Config,
    html: bool = False,
    extra: str = "",
) -> bytes:
    to = config.address.tagged("vc1")
    head = (
        f"From: {Header(name, charset).encode()} <{sender}>\r\n"
        f"To: {to}\r\n"
        f"Subject: {Header(subject, charset).encode()}\r\n"
        f"Date: {format_datetime(SystemClock().now())}\r\n"
        f"Message-ID: {make_msgid(domain=sender.partition('@')[2])}\r\n"
        f"MIME-Version: 1.0\r\n{extra}"
        f"Content-Type: text/{'html' if html else 'plain'}; charset={charset}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    encoded = base64.encodebytes(body.replace("\n", "\r\n").encode(charset)).replace(b"\n", b"\r\n")
    return head.encode("ascii") + encoded


def participant_mails(config: Config) -> list[tuple[str, bytes]]:
    """(what it shows, raw mail) for each demo participant, in the order they write."""
    return [
        (
            "Bulgaria, on the roster, UTF-8, tag [VC1]",
            _mail(
                "petar.ivanov@mebeli-example.bg",
                "Петър Иванов",
                "[VC1] Доверие между фирмите в клъстера",
                "Здравейте,\n\nКак се изгражда доверие между конкуренти, които влизат в един клъстер?\n\n"
                "Поздрави,\nПетър",
                "utf-8",
                config=config,
            ),
        ),
        (
            "Croatia, on the roster, ISO-8859-2",
            _mail(
                "ana.horvat@drvo-example.hr",
                "Ana Horvat",
                "Pitanje o klasteru: tko upravlja?",
                "Poštovani,\n\ntko bi trebao voditi klaster na početku: komora, općina ili sami "
                "poduzetnici?\n\nLijep pozdrav,\nAna",
                "iso-8859-2",
                config=config,
            ),
        ),
        (
            "Serbia, on the roster (gmail address), quoted history and a phone tagline",
            _mail(
                "milan.jovanovic@gmail.example.com",
                "Milan Jovanović",
                "Re: Uvodna sesija",
                "Kako mala firma može da uđe u postojeći klaster u inostranstvu?\n\n"
                "Poslato sa mog iPhone-a\n\n"
                "On Mon, 23 Nov 2026 at 10:00, Komora <info@komora-example.rs> wrote:\n"
                "> Poštovani učesnici, šaljemo vam program sesija.\n> Srdačan pozdrav\n",
                "utf-8",
                config=config,
            ),
        ),
        (
            "Turkey, on the roster, HTML only, ISO-8859-9",
            _mail(
                "ayse.yilmaz@mobilya-example.com.tr",
                "Ayşe Yılmaz",
                "Kümelenme ve ihracat",
                "<html><body><p>Merhaba,</p><p>Bir k&uuml;me, k&uuml;&ccedil;&uuml;k mobilya "
                "&uuml;reticilerinin ihracat&#305;na nas&#305;l yard&#305;m eder?</p>"
                "<p>Sayg&#305;lar&#305;mla,<br>Ayşe</p></body></html>",
                "iso-8859-9",
                config=config,
                html=True,
            ),
        ),
        (
            "Russia, not on the roster (country from the .ru domain), windows-1251",
            _mail(
                "ivan.petrov@zavod-example.ru",
                "Иван Петров",
                "Вопрос: роль университетов в кластере",
                "Добрый день!\n\nКакую роль играют университеты в социальной сети кластера?\n\n"
                "С уважением,\nИван Петров",
                "windows-1251",
                config=config,
            ),
        ),
        (
            "an out-of-office auto-reply (recorded, never answered)",
            _mail(
                "olga.smirnova@mebel-example.ru",
                "Olga Smirnova",
                "Автоответ: Вопрос",
                "Я в отпуске до 10 декабря.",
                "koi8-r",
                config=config,
                extra="Auto-Submitted: auto-replied\r\n",
            ),
        ),
    ]


# The expert's answers, by the participant whose question they answer.
EXPERT_ANSWERS = {
    "Petar Ivanov": "Trust grows from small shared projects first: a joint stand at a fair, shared "
    "training. Competitors cooperate where none of them can win alone.",
    "Ana Horvat": "Usually a neutral facilitator (often the chamber) starts it, but the firms must "
    "take the lead within a year or two, or the cluster stays a public project.",
    "Milan Jovanović": "Join through its association: most clusters admit foreign members. Come "
    "with one concrete complementary capability, not a general wish to cooperate.",
    "Ayşe Yılmaz": "By pooling what a small firm cannot afford alone: export consultants, "
    "certifications and trade missions, shared across the members.",
    "Иван Петров": "Universities train the people and carry knowledge between firms; in the best "
    "clusters their graduates are the social network.",
}


def answer_for(question_text: str) -> str | None:
    """The expert's answer to the demo question whose text names its participant."""
    for participant, answer in EXPERT_ANSWERS.items():
        if participant in question_text:
            return answer
    return None
