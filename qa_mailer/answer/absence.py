"""Out-of-office notices by their words, in the languages our experts write.

Not every vacation responder marks its mail (RFC 3834's ``Auto-Submitted``); some answer the
expert's copy with a plain "Re: ..." that carries the reply token. What gives them away is
what they say: that the writer *is* away, *will* answer on return, or that this *is* an
automatic reply. The phrases are present or future on purpose: an expert who answers "I was
away, sorry for the delay" is answering, and must not be held.

Phrases are data, one ``|``-separated string per language (as in ``replies/vocab.py``),
compared after ``fold()``; adding a language touches nothing else.
"""

from __future__ import annotations

import re

from qa_mailer.replies.vocab import alternation, fold

ABSENCE_PHRASES: dict[str, str] = {
    "en": (
        "out of office|out of the office|automatic reply|auto-reply|autoreply|auto reply"
        "|this is an automated|this is an automatic|i am away|i'm away|i am currently away"
        "|i am on vacation|i'm on vacation|i am currently on vacation|i am on holiday"
        "|i'm on holiday|i am on leave|i'm on leave|i am on annual leave|i am currently on leave"
        "|i am out of the office|i'm out of the office|i am currently out of the office"
        "|i will be out of the office|i will be away|away from the office"
        "|limited access to email|limited access to e-mail|limited access to my email"
        "|limited access to my e-mail|no access to email|no access to e-mail"
        "|upon my return|on my return|when i return|back in the office on"
        "|i will return on|i will be back on|returning to the office on"
    ),
    "bg": (
        "автоматичен отговор|извън офиса|не съм в офиса|в отпуск съм|съм в отпуск"
        "|в момента съм в отпуск|отсъствам|ще отсъствам|ще се върна на|ще се върна в офиса"
        "|ограничен достъп до имейл|ограничен достъп до електронна поща"
        "|след завръщането си|ще отговоря при завръщането си"
    ),
    "hr": (
        "automatski odgovor|izvan ureda|nisam u uredu|odsutan sam|odsutna sam|bit ću odsutan"
        "|bit ću odsutna|na godišnjem sam odmoru|na godišnjem odmoru sam|na godišnjem odmoru do"
        "|na bolovanju sam|vraćam se u ured|vratit ću se u ured|po povratku"
        "|ograničen pristup e-pošti|ograničen pristup e-mailu"
    ),
    "sr-latn": (
        "automatski odgovor|van kancelarije|nisam u kancelariji|odsutan sam|odsutna sam"
        "|biću odsutan|biću odsutna|na godišnjem odmoru sam|na odmoru sam|na odmoru do"
        "|vraćam se u kancelariju|po povratku|ograničen pristup e-pošti|ograničen pristup imejlu"
    ),
    "sr-cyrl": (
        "аутоматски одговор|ван канцеларије|нисам у канцеларији|одсутан сам|одсутна сам"
        "|бићу одсутан|бићу одсутна|на годишњем одмору сам|на одмору сам|на одмору до"
        "|враћам се у канцеларију|по повратку|ограничен приступ е-пошти"
    ),
    "tr": (
        "otomatik yanıt|otomatik cevap|ofis dışındayım|ofis dışında olacağım|ofiste değilim"
        "|izindeyim|yıllık izindeyim|tatildeyim|ofise döndüğümde|döndüğümde yanıt"
        "|döndüğümde cevap|döndüğümde size|e-postalarıma erişimim sınırlı"
        "|e-postalarıma erişimim kısıtlı|e-postama erişimim sınırlı"
    ),
    "ru": (
        "автоматический ответ|автоответ|вне офиса|не в офисе|нахожусь в отпуске|я в отпуске"
        "|в отпуске до|отсутствую|буду отсутствовать|вернусь в офис|отвечу по возвращении"
        "|по возвращении отвечу|отвечу после возвращения|ограниченный доступ к почте"
        "|ограниченный доступ к электронной почте"
    ),
}

# Words bounded by anything but a letter or digit, so "отсутствую" does not match inside a
# longer word and "i am away" not inside "i am awaylisted".
_ABSENCE = re.compile(
    r"(?<!\w)(?:"
    + alternation(fold(p) for v in ABSENCE_PHRASES.values() for p in v.split("|"))
    + r")(?!\w)"
)


def absence_phrase(text: str) -> str | None:
    """The first out-of-office phrase in ``text``, or None."""
    found = _ABSENCE.search(fold(text))
    return " ".join(found.group(0).split()) if found else None
