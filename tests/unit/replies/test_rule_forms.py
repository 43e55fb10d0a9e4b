"""Each trimming rule alone: quote headers, field blocks, dividers, taglines, and prose that
must survive them. The forms are written for these tests, one per client and language."""

from __future__ import annotations

import pytest

from qa_mailer.replies import parse_reply
from qa_mailer.replies.classify import classify
from qa_mailer.replies.lines import Kind, normalise, split_lines
from qa_mailer.replies.signatures import is_tagline

ATTRIBUTIONS = [
    "On Mon, 3 Mar 2025 at 10:15, QA <qa@x.org> wrote:",
    "On Mon, Mar 3, 2025 at 10:15 AM QA <qa@x.org> wrote:",
    "On 3 Mar 2025, at 10:15, QA <qa@x.org> wrote:",
    "On 03/03/2025 10:15, QA Mailer wrote:",
    "On Mar 3, 2025, at 10:15 AM, QA <qa@x.org> wrote:",
    "On Monday, March 3, 2025, 10:15 AM, QA <qa@x.org> wrote:",
    "On Mon, Mar 3, 2025 at 10:15 AM, QA <qa@x.org> wrote:",
    "пн, 3 мар. 2025 г. в 10:15, QA <qa@x.org>:",
    "3 марта 2025 г., в 10:15, QA <qa@x.org> написал(а):",
    "03.03.2025 10:15, QA Mailer пишет:",
    '03.03.2025, 10:15, "QA Mailer" <qa@conf.example.org>:',
    "Понедельник, 3 марта 2025, 10:15 +03:00 от QA <qa@x.org>:",
    "3 марта 2025 г. 10:15 пользователь QA <qa@x.org> написал:",
    "В понедельник, 3 марта 2025 г. в 10:15 QA <qa@x.org> написал:",
    "На пн, 3.03.2025 г. в 10:15 ч. QA <qa@x.org> написа:",
    "На 3.03.2025 г., в 10:15, QA <qa@x.org> написа:",
    "На 3.03.2025 в 10:15, QA Mailer написа:",
    "3.03.2025 10:15, QA <qa@x.org> написа:",
    "пон, 3. мар 2025. у 10:15 QA <qa@x.org> је написао/ла:",
    "3. мар 2025. у 10:15, QA <qa@x.org> је написао:",
    "Дана 3.3.2025. у 10:15, QA Mailer је написао:",
    "pon, 3. mar 2025. u 10:15 QA <qa@x.org> je napisao/la:",
    "3. mar 2025. u 10:15, QA <qa@x.org> je napisao:",
    "Dana 3.3.2025. u 10:15, QA Mailer je napisala:",
    "pon, 3. ožu 2025. u 10:15 QA <qa@x.org> napisao je:",
    "Dana 3. ožu 2025., u 10:15, QA <qa@x.org> je napisao/la:",
    "3.3.2025. u 10:15, QA Mailer piše:",
    "On 3. ožujka 2025. 10:15, QA <qa@x.org> wrote:",
    "3 Mar 2025 Pzt, 10:15 tarihinde QA <qa@x.org> şunu yazdı:",
    "3 Mar 2025 tarihinde 10:15 saatinde, QA <qa@x.org> şunları yazdı:",
    "3.03.2025 10:15 tarihinde QA Mailer yazdı:",
    "QA <qa@x.org>, 3 Mar 2025 Pzt, 10:15 tarihinde şunu yazdı:",
    "Am Mo., 3. März 2025 um 10:15 Uhr schrieb QA <qa@x.org>:",
    "Am 03.03.2025 um 10:15 schrieb QA Mailer:",
    "Le lun. 3 mars 2025 à 10:15, QA <qa@x.org> a écrit :",
    "El lun, 3 mar 2025 a las 10:15, QA Mailer (<qa@conf.example.org>) escribió:",
    "Il giorno lun 3 mar 2025 alle ore 10:15 QA <qa@x.org> ha scritto:",
    "Op ma 3 mrt 2025 om 10:15 schreef QA <qa@x.org>:",
    "pon., 3 mar 2025 o 10:15 QA <qa@x.org> napisał(a):",
    "Em seg., 3 de mar. de 2025 às 10:15, QA <qa@x.org> escreveu:",
    "Den mån 3 mars 2025 kl 10:15 skrev QA <qa@x.org>:",
    "man. 3. mar. 2025 kl. 10:15 skrev QA <qa@x.org>:",
    "пн, 3 бер. 2025 р. о 10:15 QA <qa@x.org> пише:",
    "3 бер. 2025 р. о 10:15 QA <qa@x.org> написав(ла):",
]

WRAPPED_ATTRIBUTIONS = [
    "On Mon, 3 Mar 2025 at 10:15, QA Mailer <\nqa@conf.example.org> wrote:",
    "On Mon, 3 Mar 2025 at 10:15, QA Mailer\n<qa@conf.example.org> wrote:",
    "пн, 3 мар. 2025 г. в 10:15, QA Mailer <\nqa@conf.example.org>:",
    "На пн, 3.03.2025 г. в 10:15 ч. QA <qa@x.org>\nнаписа:",
    "pon, 3. mar 2025. u 10:15 QA <qa@x.org> je\nnapisao/la:",
    "3 Mar 2025 Pzt, 10:15 tarihinde QA <qa@x.org>\nşunu yazdı:",
    "pon, 3. ožu 2025. u 10:15 QA Mailer <\nqa@conf.example.org> napisao je:",
]

FIELD_BLOCKS = [
    "От: QA <qa@x.org>\nОтправлено: 3 марта 2025 г. 10:15\nКому: Мария\nТема: VC3",
    "От: QA <qa@x.org>\nИзпратено: понеделник, 3 март 2025 г. 10:15\nДо: Мария\nОтносно: VC3",
    "Od: QA <qa@x.org>\nPoslato: ponedeljak, 3. mart 2025. 10:15\nZa: Marko\nTema: VC3",
    "Од: QA <qa@x.org>\nПослато: понедељак, 3. март 2025. 10:15\nЗа: Марко\nТема: VC3",
    "Šalje: QA <qa@x.org>\nPoslano: ponedjeljak, 3. ožujka 2025. 10:15\nPrima: Ana\nPredmet: VC3",
    "Kimden: QA <qa@x.org>\nGönderildi: 3 Mart 2025 Pazartesi 10:15\nKime: Ayşe\nKonu: VC3",
    "Von: QA <qa@x.org>\nGesendet: Montag, 3. März 2025 10:15\nAn: Maria\nBetreff: VC3",
    "De : QA <qa@x.org>\nEnvoyé : lundi 3 mars 2025 10:15\nÀ : Maria\nObjet : VC3",
    "De: QA <qa@x.org>\nEnviado: lunes, 3 de marzo de 2025 10:15\nPara: Maria\nAsunto: VC3",
    "Da: QA <qa@x.org>\nInviato: lunedì 3 marzo 2025 10:15\nA: Maria\nOggetto: VC3",
    "Van: QA <qa@x.org>\nVerzonden: maandag 3 maart 2025 10:15\nAan: Maria\nOnderwerp: VC3",
    "Od: QA <qa@x.org>\nWysłano: poniedziałek, 3 marca 2025 10:15\nDo: Maria\nTemat: VC3",
    "Från: QA <qa@x.org>\nSkickat: den 3 mars 2025 10:15\nTill: Maria\nÄmne: VC3",
    "Fra: QA <qa@x.org>\nSendt: mandag 3. mars 2025 10:15\nTil: Maria\nEmne: VC3",
    "*From:* QA <qa@x.org>\n*Sent:* Monday, March 3, 2025 10:15 AM\n*To:* Maria\n*Subject:* VC3",
    "From: QA <qa@x.org> Sent: Monday, March 3, 2025 10:15 AM To: Maria Subject: VC3",
    "Від: QA <qa@x.org>\nНадіслано: 3 березня 2025 р. 10:15\nКому: Марія\nТема: VC3",
]

DIVIDERS = [
    "-----Original Message-----",
    "----- Исходное сообщение -----",
    "-------- Forwarded message --------",
    "-------- Пересылаемое сообщение --------",
    "-------- Оригинално съобщение --------",
    "-----Izvorna poruka-----",
    "-------- Originalna poruka --------",
    "-------- Оригинална порука --------",
    "-------- Özgün ileti --------",
    "-------- Orijinal mesaj --------",
    "---------- Weitergeleitete Nachricht ---------",
    "-----Ursprüngliche Nachricht-----",
    "-------- Message d'origine --------",
    "-------- Mensaje original --------",
    "-------- Messaggio originale --------",
    "-----Oorspronkelijk bericht-----",
    "-------- Oryginalna wiadomość --------",
    "-------- Mensagem original --------",
    "-------- Ursprungligt meddelande --------",
    "-------- Opprinnelig melding --------",
    "-------- Oprindelig besked --------",
    "-------- Вихідне повідомлення --------",
    "---------- Препратено съобщение ---------",
    "---------- Proslijeđena poruka ---------",
    "---------- Прослеђена порука ---------",
    "---------- İletilen mesaj ---------",
]

TAGLINES = [
    "Sent from my iPhone",
    "Sent from my Samsung Galaxy smartphone.",
    "Get Outlook for Android",
    "Get Outlook for iOS",
    "Sent from Mail for Windows",
    "Sent from Mail for Windows 10",
    "Отправлено с iPhone",
    "Отправлено из мобильной Почты Mail.ru",
    "Отправлено из Яндекс Почты",
    "Отправлено с мобильного",
    "Отправлено из мобильной Яндекс.Почты",
    "Изпратено от моя iPhone",
    "Poslato sa mog iPhone-a",
    "Послато са мог iPhone-а",
    "Poslano s mog iPhonea",
    "iPhone'umdan gönderildi",
    "Gesendet von meinem iPhone",
    "Von meinem iPhone gesendet",
    "Envoyé de mon iPhone",
    "Enviado desde mi iPhone",
    "Inviato da iPhone",
    "Verzonden vanaf mijn iPhone",
    "Wysłane z iPhone'a",
    "Enviado do meu iPhone",
    "Skickat från min iPhone",
    "Sendt fra min iPhone",
    "Надіслано з iPhone",
    "Poslano iz aplikacije Pošta za Windows",
    "Sent from Yahoo Mail on Android",
    "Sent from my Huawei phone",
    "Samsung Galaxy akıllı telefonumdan gönderildi",
    "Android için Outlook'u edinin",
    "Получить Outlook для Android",
    "Изтеглете Outlook за Android",
    "Preuzmite Outlook za Android",
    "Отправлено с моего Galaxy",
    "Sent via the Samsung Galaxy S21, an AT&T 5G smartphone",
    "Enviado desde mi smartphone Samsung Galaxy.",
    "Inviato dal mio dispositivo Huawei",
    "Отправлено из приложения Почта для Windows",
    "Изпратено от Поща за Windows",
    "Windows için Posta'dan gönderildi",
]

PROSE = [
    "On Monday I wrote to the cluster manager:",
    "On 3 March 2025 the commission wrote:",
    "On 3 March I wrote:",
    "In 2019 the OECD wrote:",
    "From: the Lombardy cluster, a reply came within a day.",
    "To: all participants who asked about funds",
    "Date: to be announced",
    "Subject: cluster policy",
    "---",
    "-----",
    "***",
    "=====",
    "- a hyphen list item",
    "-- as I said, this is important",
    "--- message from the chair ---",
    "----- Section 2: funding -----",
    "Sent from Brussels, the list is online.",
    "Sent with the report last week.",
    "Sent to all cluster managers in 2024.",
    "Отправлено в министерство в 2023 году.",
    "Poslato je ministarstvu 2023. godine.",
    "Gönderildi mi bilmiyorum.",
    "Q-18 asked something similar.",
    "1. First step",
    "> not really a quote? No, it is one",
    "Best regards to your team, by the way.",
    "Thanks to the EU, clusters grew.",
    "Odgovor na pitanje je jednostavan: da.",
    "Ответ: да, можно.",
    "На 3 март 2025 г. имаме среща в 10:00 часа.",
    "Dana 3.3.2025. u 10:15 počinje sesija.",
    "03.03.2025 10:15 the session starts",
    "2025-03-03 10:15 GMT+01:00 is the start time",
    "Am 03.03.2025 um 10:15 beginnt die Sitzung.",
    "Le 3 mars 2025 à 10:15, la session commence.",
    "pon, 3. mar 2025. u 10:15 počinje sesija",
    "Begin with the member list:",
    "Original message? No, the forwarded one:",
    "________",
    "Get Outlook? No, use any client for iOS and Android.",
    "iPhone'dan gönderdiğiniz soru güzeldi.",
]


def _kinds(block: str) -> list[Kind]:
    body = f"Reply text.\n\n{block}\n\nold text"
    return [line.kind for line in classify(split_lines(normalise(body)))][2:-2]


@pytest.mark.parametrize("header", ATTRIBUTIONS + WRAPPED_ATTRIBUTIONS)
def test_attribution_is_a_header(header: str) -> None:
    assert set(_kinds(header)) == {Kind.HEADER}


@pytest.mark.parametrize("block", FIELD_BLOCKS, ids=lambda block: block.split(":")[0])
def test_field_block_is_a_header(block: str) -> None:
    assert set(_kinds(block)) == {Kind.HEADER}


@pytest.mark.parametrize("divider", DIVIDERS)
def test_divider_is_a_header(divider: str) -> None:
    assert _kinds(divider) == [Kind.HEADER]


@pytest.mark.parametrize("tagline", TAGLINES)
def test_tagline(tagline: str) -> None:
    assert is_tagline(tagline)


@pytest.mark.parametrize("line", PROSE)
def test_prose_survives(line: str) -> None:
    body = f"First paragraph of the answer.\n{line}\nLast paragraph of the answer.\n"
    new_text = parse_reply(text=body).new_text
    assert new_text.endswith("Last paragraph of the answer.")
    if not line.startswith(">"):
        assert line in new_text
