"""Words mail clients write around quoted mail, in the languages our experts use.

These are facts about clients (Gmail, Outlook, Apple Mail, Thunderbird, Yandex, Mail.ru, phone
apps) in English, Russian, Bulgarian, Serbian (both scripts), Croatian, Turkish and the common
European languages. The rules in ``attribution_text.py``, ``headers.py``, ``signatures.py`` and
``closings.py`` turn them into patterns; keeping the words here lets a language be added
without touching any rule.

Where a string was read in a client's own localisation files, the comment above it names the
project and file: Thunderbird (thunderbird-l10n, mail/chrome/messenger/messengercompose/
composeMsgs.properties, mailnews.reply_header_*), K-9 Mail / Thunderbird for Android
(legacy/ui/legacy/src/main/res/values-<lang>/strings.xml, message_compose_*), Roundcube
(program/localization/<lang>/labels.inc), SOGo (SoObjects/Mailer/SOGoMail<Language>Reply.wo)
and Horde IMP (locale/<lang>/LC_MESSAGES/imp.po).

Lists are written as ``|``-separated strings so that a phrase of several words stays one entry.
Everything is compared after ``fold()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def alternation(words: Iterable[str]) -> str:
    """A regex alternation of ``words``, longest first, with any run of spaces allowed inside."""
    ordered = sorted(set(words), key=len, reverse=True)
    return "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in ordered)


def fold(text: str) -> str:
    """Text as the word lists compare it: casefolded, Turkish "İ" as a plain "i".

    ``"İ".casefold()`` is "i" plus a combining dot, which no word list would match.
    """
    return text.casefold().replace("\u0307", "")


def fold_in_place(text: str) -> str:
    """Like ``fold`` but one character for one, so that offsets still point into ``text``."""
    folded = text.casefold()
    if len(folded) == len(text):
        # Every character folded to one character (no "ß", no "İ"), so the join below gives
        # the same text, a hundred times slower: it keeps the combining dot, the one
        # character fold() drops, and so does casefold().
        return folded
    return "".join(fold(char)[:1] or char for char in text)


def _words(text: str) -> tuple[str, ...]:
    return tuple(fold(word.strip()) for word in text.split("|") if word.strip())


# Words that open an attribution line: "On <date>, <name> wrote:", "Le <date>, ... a écrit :".
# Gmail in Russian, Ukrainian, Polish, Turkish and Croatian starts with the date itself, and
# Eudora with "At"; Polish uses "W dniu"/"Dnia", Bulgarian "На", Serbian Cyrillic "Дана".
ATTRIBUTION_OPENERS = _words(
    "on | at | le | am | el | il | il giorno | em | op | w dniu | dnia | den | på | dana"
    " | дана | на | dne | vào | pe"
    # Thunderbird composeMsgs.properties (reply_header_ondateauthorwrote): el "Στις", sq
    # "Më", pt-PT "Às", sk "Dňa"; Roundcube labels.inc (mailreplyintro): ro_RO "În"; K-9 Mail
    # strings.xml (message_compose_reply_header_fmt_with_date): hu "Ekkor:".
    " | στις | më | în | às | dňa | ekkor:"
    # SOGo SoObjects/Mailer/SOGoMailPolishReply.wo: "W dniu: #, # napisał(a):".
    " | w dniu:"
)

# Openers so common as words that they count only right before the date's first digit:
# Thunderbird ro "La #2 #3, #1 a scris:", Roundcube pt_PT "A $date, $sender escreveu:", K-9
# Mail hr "Na %1$s, %2$s wrote:".
DATE_OPENERS = _words("a | la | na")

# Verbs that close an attribution line. A feminine ending in brackets or after a slash
# ("napisał(a)", "написал(а)", "je napisao/la", "је написао/ла") is allowed by the pattern.
ATTRIBUTION_VERBS = _words(
    "wrote | writes | sent | a écrit | écrit | schrieb | hat geschrieben | escribió | escribio"
    " | ha escrito | ha scritto | scrisse | escreveu | schreef | het volgende geschreven"
    " | geschreven | napisał | napisała | napisal | pisze | skrev | написал | написала | пишет"
    " | написав | пише | написа | је написао | је написала | написао је | написала је"
    " | je napisao | je napisala | napisao je | napisala je | piše | pise | yazdı | đã viết"
    " | napsal | napsala | írta | kirjoitti | a scris | 写道 | 寫道"
    # Roundcube program/localization/<lang>/labels.inc, mailreplyintro: ru_RU "$sender
    # писал(а) $date:", tr_TR "$date, $sender yazmış:", hr_HR "je napisao(la)", hu_HU "ezt
    # írta", sk_SK "napísal(a)".
    " | писал | писала | yazmış | ezt írta | napísal | napísala"
    # Thunderbird composeMsgs.properties (mailnews.reply_header_*): el "έγραψε", sq "shkroi",
    # sl "je napisal(a)"; K-9 Mail values-sl/strings.xml "sporoča".
    " | έγραψε | shkroi | je napisal | sporoča"
    # SOGo SoObjects/Mailer/SOGoMail<Language>Reply.wo: bs "napisao/napisala", sl
    # "napisal-a", hu "ezt írta", tr "şunu yazdı".
    " | napisao/napisala | napisal-a"
)

# Words that open Horde IMP's attribution, "Quoting %f:" with the sender's name and address
# (horde/imp locale/<lang>/LC_MESSAGES/imp.po, config/prefs.php attrib_text).
QUOTING_WORDS = _words(
    "quoting | цитирую | citiram | alinti | zitat von | cytowanie | citeren | citando | цитую"
    " | cituji | citát | citerar | siterer | citat af | lainaus | idézet | περιορίζοντας"
)

# Header field names of the block Outlook, Android and webmail put above a quoted message,
# grouped by what the field says. A block needs fields of at least two groups.
HEADER_FIELDS: dict[str, tuple[str, ...]] = {
    "from": _words(
        "from | von | de | da | van | od | од | от | від | från | fra | šalje | salje | kimden"
        " | gönderen | feladó | lähettäjä | odesílatel | absender"
        # Roundcube labels.inc 'from': it_IT, nl_NL, nb_NO, da_DK, tr_TR, ro_RO, uk_UA; K-9
        # Mail quote_header_from: ro, sq, el.
        " | mittente | afzender | avsender | afsender | gönderici | expeditor | від кого"
        " | de la | nga | από"
        # SOGo SoObjects/Mailer/SOGoMailFinnishForward.wo (and Reply.wo): "Keneltä".
        " | keneltä"
    ),
    "sent": _words(
        "sent | gesendet | envoyé | envoye | enviado | enviada em | enviado el | inviato"
        " | verzonden | verstuurd | wysłano | wysłane | skickat | sendt | отправлено"
        " | изпратено | послато | poslato | poslano | gönderildi | gönderilme tarihi"
        " | надіслано | odesláno | elküldve | lähetetty"
        # K-9 Mail quote_header_send_date: tr, it, sk, ro, sq, el, bg ("Изпрати до").
        " | gönderilme | inviato il | odoslané | trimis | dërguar më | αποστολή | изпрати до"
        # Orange and La Poste webmail: "Message du 03/03/25 10:15" above "De :", "A :".
        " | message du"
    ),
    "date": _words(
        "date | datum | fecha | data | dato | дата | датум | tarih | päivämäärä"
        # Roundcube labels.inc 'date': fi_FI, sk_SK, hu_HU.
        " | päiväys | dátum"
        # SOGo SoObjects/Mailer/SOGoMailFinnishReply.wo: "Pvm".
        " | pvm"
    ),
    "to": _words(
        "to | an | à | a | para | aan | do | till | til | кому | до | за | za | prima | kime"
        " | címzett | komu | vastaanottaja"
        # Roundcube labels.inc 'to': it_IT, es_ES, nl_NL, sv_SE, nb_NO, da_DK, cs_CZ, tr_TR,
        # ro_RO, mk_MK; K-9 Mail quote_header_to: sq, el.
        " | destinatario | ontvanger | mottagare | mottaker | modtager | adresát | alıcı"
        " | destinatar | примач | për | προς"
        # SOGo SoObjects/Mailer/SOGoMail<Language>Reply.wo: fr "Pour", fi "Kenelle".
        " | pour | kenelle"
    ),
    "cc": _words(
        "cc | bcc | kopie | копия | копие | копија | kopija | bilgi | dw | kopia | kopi | копія"
        " | cci | cco | másolat"
        # Roundcube labels.inc 'cc': bg_BG, sr_CS, tr_TR, en_GB, pt_BR, nb_NO, sk_SK, sl_SI,
        # fi_FI, mk_MK; K-9 Mail quote_header_cc: el; Orange and La Poste webmail "Copie à".
        " | копие до | цц | kopya | copy | cópia | kopi til | kópia | kp | kopio | копирај"
        " | κοιν | copie à"
        # SOGo SoObjects/Mailer/SOGoMail<Language>Reply.wo: fr "Copie", bs "Kopiraj".
        " | copie | kopiraj"
    ),
    "subject": _words(
        "subject | betreff | objet | sujet | asunto | oggetto | onderwerp | temat | assunto"
        " | ämne | emne | тема | относно | tema | predmet | konu | tárgy | aihe | předmět"
        # Roundcube labels.inc 'subject': bg_BG, sr_CS, hr_HR, sl_SI, ro_RO; K-9 Mail
        # quote_header_subject: sq, el.
        " | заглавие | наслов | naslov | zadeva | subiect | subjekt | θέμα"
    ),
    "reply": _words(
        "reply-to | reply to | antwort an | répondre à | responder a | rispondi a | risposta"
        " | odpowiedz do | yanıtla"
        # SOGo SoObjects/Mailer/SOGoMail<Language>Reply.wo, the Reply-To label.
        " | odpowiedź do | ответить | відповісти | одговори | odgovori | responder-a"
        " | svar-till | svar-til | válaszcím | răspunde la | odpověď pro | odpoveď pre"
    ),
    "other": _words("importance | wichtigkeit | priorité | attachments | anlagen | важность"),
}

# Nouns for "message" in the dashed dividers clients draw: "-----Original Message-----",
# "-------- Пересылаемое сообщение --------", "---------- Izvorna poruka ----------".
MESSAGE_NOUNS = _words(
    "message | messages | nachricht | сообщение | сообщения | съобщение | poruka | порука"
    " | mesaj | ileti | iletisi | bericht | wiadomość | wiadomosc | mensagem | mensaje"
    " | messaggio | meddelande | melding | meddelelse | besked | повідомлення | лист | mail"
    " | e-mail | email | zpráva | üzenet | viesti | correo | courriel | писмо | pismo"
    # Thunderbird composeMsgs.properties (mailnews.reply_header_originalmessage): pl "Treść
    # oryginalnej wiadomości", sl "Izvirno sporočilo", sk "Pôvodná správa", el "Αρχικό
    # μήνυμα", mk "Оригинална порака", sq "Mesazhi Origjinal".
    " | wiadomości | sporočilo | správa | порака | μήνυμα | mesazhi"
    # SOGo SoObjects/Mailer/SOGoMailNorwegianBokmalReply.wo: "Orginalpost".
    " | orginalpost"
)

# Stems of "original" that, with a message noun, make a dashed divider ("Original Message",
# "Исходное сообщение", "Izvorna poruka", "Özgün ileti"); forwarded ones are FORWARD_STEMS.
ORIGINAL_STEMS = _words(
    "origin | исходн | оригинал | оригінал | вихідн | izvorn | originaln | orijinal | оригинaлн"
    " | özgün | ursprüng | oorspr | oryginal | ursprung | opprinn | oprind | d'origine"
    # Thunderbird composeMsgs.properties (mailnews.reply_header_originalmessage): sr
    # "Изворна порука", sl, sk, uk "Початкове повідомлення", el, sq; K-9 Mail strings.xml
    # (message_compose_quote_header_separator): fr "Courriel initial", el "Πρωτότυπο".
    " | изворн | izvirn | pôvodn | початков | αρχικ | πρωτότυπ | origjinal | initial"
    # SOGo SoObjects/Mailer/SOGoMail<Language>Reply.wo: sv "Orginalmeddelande", nb
    # "Orginalpost" (both so spelt), ro "Mesaj Inițial".
    " | orginal | inițial"
)

# Stems of "forwarded", for Apple Mail's "Begin forwarded message:" and its translations.
FORWARD_STEMS = _words(
    "forward | weitergeleitet | переадрес | пересыл | пересла | препрат | prosleđ | proslijeđ"
    " | proslijed | прослеђ | ilet | yönlendir | réexpédié | transféré | reenviad | inoltrat"
    " | doorgestuurd | przekaz | encaminhad | vidarebefordra | videresend | переслан"
    " | пересилан"
)

# The verb of "sent" in phone and app taglines ("Sent from my iPhone", "Отправлено с iPhone").
TAGLINE_VERBS = _words(
    "sent | gesendet | verschickt | envoyé | envoye | enviado | enviada | inviato | verzonden"
    " | verstuurd | wysłane | wysłano | skickat | sendt | отправлено | изпратено | послато"
    " | poslato | poslano | надіслано | odesláno | elküldve | lähetetty | trimis"
)

# Prepositions that follow those verbs ("from", "via", "с", "от", "sa", "iz", "vanaf", ...).
TAGLINE_PREPOSITIONS = _words(
    "from | via | with | using | by | on | von | mit | vom | aus | über | de | depuis"
    " | à partir de | desde | con | com | do | da | dal | dalla | dallo | tramite | vanaf | van"
    " | met | vanuit | z | ze | przez | från | med | fra | с | со | из | через | от | чрез | са"
    " | s | sa | iz | preko | putem | із | зі | з | pelo | pela | no"
)

# What a tagline names, the device or the app; looked for inside the casefolded line.
TAGLINE_DEVICE_STEMS = _words(
    "iphone | ipad | ipod | android | samsung | galaxy | mobil | móvil | movil | phone | fono"
    " | телефон | cell | device | dispositiv | appareil | gerät | tablet | outlook | mail"
    " | blackberry | windows | yahoo | aol | proton | spark | nokia | huawei | xiaomi | htc"
    " | pixel | почт | пошт | поща | pošt | posta | яндекс | yandex | мобил | мобіл"
    " | смартфон | pametn | akıllı | aplikac | applicaz | приложени | додат | uređaj | уређај"
    " | urządzen | устройств | пристро | айфон | k-9 | app"
)

# "my" in taglines ("from my ...", "с моего ...", "sa mog ...", "von meinem ...").
TAGLINE_POSSESSIVES = _words(
    "my | mon | ma | meinem | meiner | mi | mio | mia | mijn | mój | mojego | mojej | meu"
    " | minha | min | mitt | моего | моей | моя | мог | моје | mog | moje | mojeg | мого | моєї"
)

# Phrases that open a closing ("Best regards,"), kept off the end of an answer.
CLOSINGS = _words(
    "best regards | kind regards | warm regards | regards | best wishes | best | cheers"
    " | thanks | thank you | many thanks | sincerely | yours | all the best | с уважением"
    " | всего доброго | всего хорошего | спасибо | с наилучшими пожеланиями | поздрави"
    " | с уважение | благодаря | поздрав | srdačan pozdrav | srdačno | lep pozdrav"
    " | lijep pozdrav | pozdrav | pozdravi | hvala | срдачан поздрав | хвала | saygılarımla"
    " | saygılar | teşekkürler | iyi çalışmalar | mit freundlichen grüßen | viele grüße"
    " | beste grüße | grüße | danke | cordialement | bien à vous | merci | salutations"
    " | saludos | un saludo | atentamente | gracias | cordiali saluti | saluti | grazie"
    " | met vriendelijke groet | vriendelijke groet | groeten | groet | bedankt | pozdrawiam"
    " | z poważaniem | dziękuję | atenciosamente | cumprimentos | obrigado | obrigada"
    " | med vänliga hälsningar | vänliga hälsningar | hälsningar | mvh | tack"
    " | med vennlig hilsen | vennlig hilsen | med venlig hilsen | venlig hilsen | hilsen"
    " | з повагою | дякую"
)

# Words that open a greeting ("Dear colleagues,"), kept out of an answer written on top.
GREETINGS = _words(
    "dear | hi | hello | hey | good morning | good afternoon | здравствуйте | добрый день"
    " | доброе утро | привет | уважаемые | уважаемый | уважаемая | здравейте | уважаеми"
    " | уважаема | добър ден | poštovani | poštovana | zdravo | dobar dan | dragi | draga"
    " | поштовани | поштована | здраво | добар дан | merhaba | sayın | değerli | iyi günler"
    " | liebe | lieber | hallo | sehr geehrte | sehr geehrter | guten tag | bonjour | cher"
    " | chère | chers | salut | hola | estimado | estimada | estimados | buenos días | ciao"
    " | gentile | gentili | buongiorno | cari | beste | hoi | goedemorgen | dzień dobry | witam"
    " | szanowni | szanowny | szanowna | olá | prezado | prezada | caro | cara | bom dia | hej"
    " | kære | kjære | god morgen | доброго дня | вітаю | шановні | шановний"
)

# Words that make one answer under two quoted questions answer both ("Both: yes", "Оба ...").
BOTH = _words(
    "both | all | оба | обе | все | всички | двата | двете | двамата | oba | obje | obe | sva"
    " | svi | сва | сви | her ikisi | ikisi | hepsi | beide | alle | les deux | tous | toutes"
    " | ambos | ambas | todos | todas | entrambi | tutti | tutte | obie | obu | båda | alla"
    " | begge | обидва | обидві | всі"
)
