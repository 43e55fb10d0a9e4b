"""Shapes real mail clients write that the parser used to miss (issue 9).

Each attribution below is built from a client's own localisation string (the source is named
beside it) with a date and time as that client formats them.
"""

from __future__ import annotations

import pytest

from qa_mailer.replies import QuestionRef, parse_reply

QUOTE = "> [Q-17] Ivan Petrov (Russia):\n> How can a small furniture maker join a cluster abroad?"

NAME_FIRST = [
    # Thunderbird composeMsgs.properties, mailnews.reply_header_authorwrotesingle
    "QA Mailer пишет:",  # ru
    "QA Mailer написа:",  # bg
    "QA Mailer пише:",  # sr
    "QA Mailer piše:",  # hr
    "QA Mailer je napisao/la:",  # bs
    "QA Mailer yazdı:",  # tr
    "QA Mailer ha scritto:",  # it
    "QA Mailer wrote:",  # en-GB
    # mailnews.reply_header_authorwroteondate
    "QA Mailer пишет 03.03.2025 10:15:",  # ru
    "QA Mailer написа на 3.03.2025 в 10:15:",  # bg
    "QA Mailer napisao je 3. 3. 2025. u 10:15:",  # hr, bs
    "QA Mailer, 3.03.2025 10:15 tarihinde yazdı:",  # tr
    "QA Mailer ha scritto il 03/03/2025 alle 10:15:",  # it
    "QA Mailer wrote on 03/03/2025 10:15:",  # en-GB
    "QA Mailer schrieb am 03.03.25 um 10:15:",  # de
    "QA Mailer a écrit le 03/03/2025 à 10:15 :",  # fr
    "QA Mailer je 3. 3. 2025 ob 10:15 napisal:",  # sl
    # Roundcube program/localization/<lang>/labels.inc, mailreplyintro
    "QA Mailer писал(а) 2025-03-03 10:15:",  # ru_RU
    "QA Mailer schreef op 2025-03-03 10:15:",  # nl_NL
    "QA Mailer skrev den 2025-03-03 10:15:",  # da_DK
    "QA Mailer kirjoitti 2025-03-03 10:15:",  # fi_FI
    # K-9 Mail / Thunderbird for Android values-<lang>/strings.xml, message_compose_reply_header_fmt
    "QA Mailer je napisao:",  # hr, bs
    "QA Mailer napisał/a:",  # pl
]

DATE_FIRST = [
    # The issue's own case: Thunderbird hr, "#2 u #3, #1 piše:"
    "12. 02. 2024. u 14:03, Industrial Clusters Q&A VC2 piše:",
    "Дана 3. 3. 2025. у 10:15, QA Mailer пише:",  # Thunderbird sr
    "3. 3. 2025. u 10:15, QA Mailer je napisao/la:",  # Thunderbird bs
    "2025-03-03 10:15, QA Mailer yazmış:",  # Roundcube tr_TR
    "Dana 2025-03-03 10:15, QA Mailer je napisao(la):",  # Roundcube hr_HR
    "2025-03-03 10:15, QA Mailer je napisao/la:",  # Roundcube bs_BA
    "2025-03-03 10:15, QA Mailer написав:",  # Roundcube uk_UA
    "03.03.2025 10:15, QA Mailer:",  # Thunderbird uk, "#2 #3, #1:"
    "Στις 3/3/2025 10:15, ο/η QA Mailer έγραψε:",  # Thunderbird el
    "Më 3.3.2025, 10:15, QA Mailer shkroi:",  # Thunderbird sq
    "Ekkor: 2025. 03. 03. 10:15, QA Mailer írta:",  # K-9 hu
    "Na 3. 3. 2025. 10:15, QA Mailer wrote:",  # K-9 hr
    "Dňa 3. 3. 2025 o 10:15 QA Mailer napísal(a):",  # Thunderbird sk
    "În 03.03.2025 10:15, QA Mailer a scris:",  # Roundcube ro_RO
    "A 2025-03-03 10:15, QA Mailer escreveu:",  # Roundcube pt_PT
    "Às 10:15 de 03/03/2025, QA Mailer escreveu:",  # Thunderbird pt-PT
]

SOGO = [
    # SOGo SoObjects/Mailer/SOGoMail<Language>Reply.wo, the standard-mode attribution.
    "Dana 3.3.2025 10:15, QA Mailer napisao/napisala:",  # Bosnian
    "Dne 3.3.2025 10:15, je QA Mailer napisal-a:",  # Slovenian
    "W dniu: 3.03.2025 10:15, QA Mailer napisał(a):",  # Polish
    "3.03.2025 10:15 tarihinde, QA Mailer şunu yazdı:",  # TurkishTurkey
    "2025-03-03 10:15 dátummal, QA Mailer ezt írta:",  # Hungarian
    "03.03.2025 10:15 QA Mailer написав(ла):",  # Ukrainian
]

# Seen after the rules above were written, and missed at first.
LATER = [
    "03.03.2025 10:15, Industrial Clusters Q&A VC3:",  # Thunderbird uk, a name with a digit
    "skrev Industrial Clusters Q&A VC3:",  # Thunderbird nb, reply_header_authorwrotesingle
    "Alinti Industrial Clusters Q&A VC3 <qa@conf.example.org>",  # Horde tr, no colon
    "Περιορίζοντας Industrial Clusters Q&A VC3 <qa@conf.example.org>:",  # Horde el
]

HORDE = [
    # Horde IMP locale/<lang>/LC_MESSAGES/imp.po, "Quoting %f:" (config/prefs.php attrib_text)
    "Quoting QA Mailer <qa@conf.example.org>:",  # en
    "Цитирую QA Mailer <qa@conf.example.org>:",  # ru
    "Citiram QA Mailer <qa@conf.example.org>:",  # hr, bs, sl
    "Zitat von QA Mailer <qa@conf.example.org>:",  # de
    "Idézet (QA Mailer <qa@conf.example.org>):",  # hu
    # "Message from %s" between dashes, when the reply_headers preference is on
    "----- Message from QA Mailer <qa@conf.example.org> ---------",  # en
    "----- Писмо от QA Mailer <qa@conf.example.org> ---------",  # bg
    "----- Poruka od QA Mailer <qa@conf.example.org> ---------",  # hr
]

OTHER_SHAPES = [
    # No closing colon.
    "On Mon, 3 Mar 2025 at 10:15, QA <qa@x.org> wrote",
    "2025-03-03 10:15, je QA Mailer napisal",  # Roundcube sl_SI
    # Wrapped, the first line without date or time.
    "On Wed, Dec 9, Mister Example\n<mister@example.com>\nwrote:",
    # Starting with the time.
    '11:00 AM, November 17, 2021, "John - Acme" <john@acme.com>:',
]


@pytest.mark.parametrize("header", NAME_FIRST + DATE_FIRST + SOGO + HORDE + LATER + OTHER_SHAPES)
def test_attribution_above_a_quote_is_cut(header: str) -> None:
    parsed = parse_reply(text=f"Yes, as a partner member.\n\n{header}\n{QUOTE}\n")
    assert parsed.new_text == "Yes, as a partner member."
    assert parsed.reply == "Yes, as a partner member."


@pytest.mark.parametrize("header", DATE_FIRST[:3])
def test_dated_attribution_over_unquoted_history_is_cut(header: str) -> None:
    parsed = parse_reply(text=f"Yes.\n\n{header}\n\nOld mail.\n")
    assert parsed.new_text == "Yes."


PROSE = [
    "Maria writes:",
    "The commission wrote:",
    "Ana je napisala:",
    "Иван пишет:",
    "The report wrote on 3 March 2025 about clusters:",
    "12. 02. 2024. u 14:03 počinje sesija.",
    "11:00 AM, the session starts:",
    "03.03.2025 10:15, agenda:",
    "Quoting the report:",
    "03.03.2025 10:15, Agenda and minutes of the meeting in Rome, items one to five:",
    "Wrote the commission: clusters grow by trust.",
    "----- Message from the chair -----",
]


@pytest.mark.parametrize("line", PROSE)
def test_prose_over_unquoted_text_survives(line: str) -> None:
    body = f"First paragraph of the answer.\n\n{line}\nLast paragraph of the answer.\n"
    new_text = parse_reply(text=body).new_text
    assert line in new_text
    assert new_text.endswith("Last paragraph of the answer.")


def test_top_posted_numbered_answers_do_not_take_the_attribution() -> None:
    questions = (
        QuestionRef("Q-17", "How long does joining a cluster take?"),
        QuestionRef("Q-18", "Which public funds support cluster internationalisation?"),
    )
    text = (
        "1. Tri do šest mjeseci.\n2. Od 30 do 60 dana.\n\n"
        "12. 02. 2024. u 14:03, Industrial Clusters Q&A VC2 piše:\n"
        "> [Q-17] How long does joining a cluster take?\n"
        "> [Q-18] Which public funds support cluster internationalisation?\n"
    )
    parsed = parse_reply(text=text, questions=questions)
    assert [(a.ref, a.answer) for a in parsed.answers] == [
        ("Q-17", "Tri do šest mjeseci."),
        ("Q-18", "Od 30 do 60 dana."),
    ]


def test_quoted_line_wrapped_without_a_marker_stays_quoted() -> None:
    text = (
        "On Mon, 3 Mar 2025 at 10:15, QA <qa@x.org> wrote:\n"
        "> [Q-17] Ivan Petrov (Russia):\n"
        "> How can a small furniture maker from the Urals join an existing cluster in\n"
        "another country?\n"
        "> [Q-18] Ana Horvat (Croatia):\n"
        "> Which funds?\n\n"
        "Through the EEN.\n"
    )
    parsed = parse_reply(text=text)
    assert parsed.new_text == "Through the EEN."
    assert [(a.ref, a.answer) for a in parsed.answers] == [("Q-18", "Through the EEN.")]


def test_an_answer_under_a_finished_quoted_line_is_not_taken_for_a_wrapped_tail() -> None:
    text = (
        "> [Q-17] How can a small furniture maker from the Urals join a cluster abroad?\n"
        "through the EEN\n"
        "> [Q-18] Which funds?\n"
    )
    parsed = parse_reply(text=text)
    assert [(a.ref, a.answer) for a in parsed.answers] == [("Q-17", "through the EEN")]


FIELD_BLOCKS = [
    # Orange / La Poste webmail: an unknown first label, "Copie à" for Cc.
    "Message du : 03/03/25 10:15\nDe : QA <qa@x.org>\nA : maria@x.org\nCopie à : \nObjet : VC3",
    "Message du 03/03/25 10:15\nDe : QA <qa@x.org>\nA : maria@x.org\nObjet : VC3",
    # Roundcube's forward header labels (labels.inc 'from', 'to', 'subject', 'date').
    "Заглавие: VC3\nДата: 2025-03-03 10:15\nОт: QA <qa@x.org>\nДо: maria@x.org",  # bg_BG
    "Наслов: VC3\nДатум: 2025-03-03 10:15\nОд: QA <qa@x.org>\nЗа: maria@x.org",  # sr_CS
    "Konu: VC3\nTarih: 2025-03-03 10:15\nGönderici: QA <qa@x.org>\nAlıcı: maria@x.org",  # tr_TR
    "Oggetto: VC3\nData: 2025-03-03 10:15\nMittente: QA <qa@x.org>\nDestinatario: m@x.org",
    # SOGo SoObjects/Mailer/SOGoMailFinnishReply.wo
    "Aihe: VC3\nPvm: 2025-03-03 10:15\nKeneltä: QA <qa@x.org>\nKenelle: m@x.org",
]


@pytest.mark.parametrize("block", FIELD_BLOCKS, ids=lambda block: block.split(":")[0])
def test_field_block_over_history_is_cut(block: str) -> None:
    parsed = parse_reply(text=f"Yes.\n\n{block}\n\nOld mail.\n")
    assert parsed.new_text == "Yes."


DIVIDERS = [
    "-------- Original-Nachricht --------",  # Thunderbird de
    "-------- Originalnachricht --------",  # Roundcube de_DE
    "-------- Originalmeddelande --------",  # K-9 sv
    "--- Treść oryginalnej wiadomości ---",  # Thunderbird pl
    "-------- Изворна порука --------",  # Thunderbird sr
    "-------- Оригинално писмо --------",  # Thunderbird bg
    "-------- Courriel initial --------",  # K-9 fr
    "-------- Izvirno sporočilo --------",  # Thunderbird sl
    "-------- Pôvodná správa --------",  # Thunderbird sk
    "-------- Початкове повідомлення --------",  # Thunderbird uk
    "-------- Αρχικό μήνυμα --------",  # Thunderbird el
    "-------- Оригинална порака --------",  # Thunderbird mk
    # SOGo SoObjects/Mailer/SOGoMail<Language>Reply.wo
    "-------- Orginalmeddelande --------",  # Swedish, so spelt
    "-------- Orginalpost --------",  # NorwegianBokmal
    "-------- Mesaj Inițial --------",  # Romanian
]


@pytest.mark.parametrize("divider", DIVIDERS)
def test_divider_over_history_is_cut(divider: str) -> None:
    parsed = parse_reply(text=f"Yes.\n\n{divider}\nOld mail.\n")
    assert parsed.new_text == "Yes."


def test_list_footer_under_a_short_underscore_rule_is_dropped() -> None:
    text = (
        "Yes, as a partner member.\n\n__\nClusters mailing list\nclusters@lists.example.org\n"
        "https://lists.example.org/listinfo/clusters\n"
    )
    assert parse_reply(text=text).new_text == "Yes, as a partner member."


def test_short_underscores_in_prose_survive() -> None:
    text = "Yes.\n\n__\nThe second part of the answer follows here, written as a sentence.\n"
    assert "second part" in parse_reply(text=text).new_text


def test_outlook_inline_mark_is_not_published() -> None:
    text = (
        "See inline.\n\nFrom: QA <qa@x.org>\nSent: Monday, 3 March 2025 10:15\nTo: M\n"
        "Subject: VC3\n\n[Q-17] Ivan Petrov (Russia):\nHow can a maker join a cluster?\n"
        "[Maria Rossi] As a partner member.\n\n[Q-18] Ana Horvat (Croatia):\nWhich funds?\n"
        "[Maria] The EEN.\n"
    )
    parsed = parse_reply(text=text)
    assert [(answer.ref, answer.answer) for answer in parsed.answers] == [
        ("Q-17", "As a partner member."),
        ("Q-18", "The EEN."),
    ]


def test_a_list_item_above_an_attribution_is_not_taken_into_it() -> None:
    # A wrapped attribution may start without a date, but only with an opener word and
    # without a blank line inside.
    text = (
        "1. As a partner member.\n2. The EEN and Interreg.\n\n"
        "On Mon, 3 Mar 2025 at 10:15, QA <qa@conf.example.org> wrote:\n> [Q-17] How?\n"
    )
    assert parse_reply(text=text).new_text == "1. As a partner member.\n2. The EEN and Interreg."


def test_a_question_under_an_unrecognised_header_is_never_its_own_answer() -> None:
    # The header is not sure enough to cut (no time, no address, no ">" under it), so the
    # old question stays in the text; its "[Q-1]" must not make it a listed answer.
    text = (
        "The chamber should start it.\n\n"
        "On 3 December 2026 the QA service wrote:\n[Q-1] Tko bi trebao voditi klaster?\n"
    )
    questions = (QuestionRef("Q-1", "Tko bi trebao voditi klaster?"),)
    parsed = parse_reply(text=text, questions=questions)
    assert [answer.ref for answer in parsed.answers] == ["Q-1"]
    assert parsed.answers[0].answer.startswith("The chamber should start it.")
