"""The language a participant's question is written in, among the languages we write mail in.

A general detector (py3langid; ``bench/bench_language.py`` compares it with lingua and
langdetect) tells Latin from Cyrillic languages and English from Turkish well, but it cannot do
three things this programme needs:

- Serbian Latin against Croatian (and Bosnian): detectors learnt Serbian mostly from Cyrillic
  text and call Serbian Latin "Bosnian" or "Croatian" as often as not. Here the reflex of old *ě*
  (ekavian "mesto", "primer" against ijekavian "mjesto", "primjer"), vocabulary
  ("saradnja"/"suradnja", "preduzeće"/"poduzeće") and "da" + present where Croatian writes an
  infinitive ("mogu da pitam"/"mogu pitati") decide, from the word lists below.
- Letters that belong to one Cyrillic alphabet only (ђ ћ in Serbian, ы э ё in Russian, ъ before
  a consonant in Bulgarian), and Serbian "да ли" where Bulgarian writes "дали", are certain
  where a statistical model on ten words is not.
- The sender's country breaks a tie between close languages: a sender from Serbia writing Latin
  is taken as Serbian unless the text is clearly Croatian, and the other way round.

Text typed without diacritics ("sta", "cak", "kume icin") is compared after folding, so the cues
are written here without diacritics ("dj" for "đ").
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qa_mailer.config import LANGUAGES

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

# The country's own language, for ``language_for`` when nothing better is known.
COUNTRY_LANGUAGES = {"BG": "bg", "HR": "hr", "RS": "sr", "TR": "tr", "RU": "ru"}

# Fewer letters than this and we do not guess ("ok", "Q-17", "?").
MIN_LETTERS = 4

# A detector's second choice within this much confidence of its first is a tie: the country,
# or our preference for the languages we write in, decides between them.
TIE_MARGIN = 0.25
OWN_LANGUAGE_MARGIN = 0.05

# The clear margin of Croatian over Serbian cues (or the other way round) that overrides what
# the sender's country suggests.
CLEAR_MARGIN = 2

# Letters found in one Cyrillic alphabet only (of those a participant here might write).
SERBIAN_ONLY = frozenset("ђћ")
SERBIAN_OR_MACEDONIAN = frozenset("јљњџ")
MACEDONIAN_ONLY = frozenset("ѓќѕ")
RUSSIAN_ONLY = frozenset("ыэё")
UKRAINIAN_OR_BELARUSIAN = frozenset("іїєґў")
# Bulgarian writes ъ as a vowel before consonants ("възможност", "към"); Russian writes it only
# as a separator before е, ё, ю, я ("объявят", "подъезд").
BULGARIAN_VOWEL_YER = re.compile(r"ъ(?![еёюя])")
# Serbian asks "да ли" in two words; Bulgarian and Macedonian write "дали" in one.
SERBIAN_DA_LI = re.compile(r"\bда ли\b")

# Languages the detector is asked about: ours and the neighbours a participant might write in,
# so that Macedonian, Slovenian or German is recognised as such (and answered with None).
DETECTOR_LANGUAGES = (
    "en", "tr", "it", "hr", "bs", "sr", "bg", "ru", "mk", "uk", "be", "sl", "de", "fr", "es",
    "pt", "pl", "cs", "sk", "ro", "hu", "nl", "sq", "az",
)  # fmt: skip
SERBO_CROATIAN = frozenset({"hr", "bs", "sr"})


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


# Cues for Croatian and for Serbian in Latin script, folded (lower case, no diacritics, "dj"
# for "đ"). A word ending in "*" matches any word it begins; otherwise the whole word.
CROATIAN_CUES = _split(
    # Ijekavian reflexes of *ě.
    "gdje ovdje prije poslije vrijem* mjest* mjesec* primjer* promjen* sljedec* cijen* dijel*"
    " dio rjes* svjet* savjet* namjestaj* mjer* izmjer* smjer* djec* lijep* sjever* vidjet*"
    " zivjet* htjel* razumjet* njemack* procjen* ocjen* odjel* vrijed* uspjes* uvjer* zelio"
    " zeljela cijel* bijel* stjec* mjesov*"
    # Croatian vocabulary where Serbian has another word.
    " tko tvrtk* poduze* sveucilist* tisuc* tjed* tocn* tijekom izravn* suradn* suradj* jamstv*"
    " natjecaj* udrug* odvjetnik* opcin* inozem* racunal* kemij* europ* financ* obitelj*"
    " tvornic* kruh uvjet* ured pogresk* vanjsk* voditelj* sudjel* projekt certifikat* glazb*"
    " zrakoplov* vlak* kava tajnik* postot* organizira* registrira* definira*"
)
SERBIAN_LATIN_CUES = _split(
    # Ekavian reflexes of *ě.
    "gde ovde pre posle vreme mest* mesec* primer* promen* sledec* cena cene cenu cenom deo deli"
    " deliti delimo resenj* resava* resit* svet* savet* namestaj* mera mere meri* merenj* smer*"
    " deca decu dece lep* sever* videt* zivet* hteo htela razumet* nemack* procen* ocen*"
    " odeljenj* vred* uspes* uver* zeleo zelela ceo cel*"
    # Serbian vocabulary where Croatian has another word.
    " ko sta hiljad* nedelj* tacn* tokom saradn* saradj* garancij* konkurs* udruzenj* advokat*"
    " opstin* inostran* racunar* hemij* evrop* finansi* porodic* fabrik* hleb uslov* kancelarij*"
    " spoljn* ucesc* ucestv* univerzitet* preduze* projekat sertifikat* kafa sekretar* plata"
    " organizova* registrova* definisa* konkuris*"
)
# "da" with the present tense where Croatian writes an infinitive: "mogu da pitam", "kako da
# nađemo", "treba da se osnuje".
SERBIAN_DA = re.compile(
    r"\b(?:da li|(?:li|mogu|moze|mozemo|mozete|mogli|mogla|mogao|treba|trebalo|zelim|zelimo"
    r"|zelela|zeleo|hocu|hocemo|moram|moramo|kako|gde|sta|koga|kome) da)\b"
)
CROATIAN_INFINITIVE_QUESTION = re.compile(r"\bje li\b")

# Marks that NFKD splits off letters (the accents of Latin letters, the breve of "й").
_COMBINING = re.compile("[\u0300-\u036f]")
# Everything but letters, and everything but the Cyrillic block: removing them counts the
# letters at C speed, without a list of one-character strings.
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_NOT_CYRILLIC = re.compile("[^\u0400-\u04ff]+")
# How much of a question the language is told from.
SAMPLE_CHARACTERS = 600
_WORD = re.compile(r"[^\W\d_]+")

# A guesser gives confidence values (0..1, summing to at most 1) per ISO 639-1 code.
Guesser = Callable[[str], Mapping[str, float]]


@dataclass(frozen=True)
class Reading:
    """What a question's text says of its language before the sender's country is known.

    Either the text settles it alone (too few letters; a letter or phrase only one language
    has), or the country may still tip a near tie: then the detector's confidences are here,
    with the Croatian and Serbian cue counts when the detector reads Serbo-Croatian. Working
    this out is all the cost of telling a language; ``decided`` adds the country.
    """

    settled: bool
    language: str | None = None  # when settled
    confidences: Mapping[str, float] = field(default_factory=dict)
    cyrillic: bool = False
    # Cyrillic letters Serbian shares with Macedonian: with a sender from Serbia, "mk" is "sr".
    serbian_or_macedonian: bool = False
    cues: tuple[int, int] | None = None  # Croatian, Serbian: when the detector says hr/bs/sr


@dataclass(frozen=True)
class LanguageClues:
    """A question's ``Reading``, worked out ahead from its text alone.

    A parsing helper works it out beside the mail (``clues_for``), and the processing stage
    adds what only it knows, the sender's roster entry and country (``language_for``).
    The reading depends on the first ``SAMPLE_CHARACTERS`` of the text alone, so that is all
    the clues keep of it: they come back from the helper with every question, and the whole
    text was a third of what a parsed question weighs there.
    """

    sample: str
    reading: Reading


def clues_for(text: str) -> LanguageClues:
    """The detector's work on ``text`` (see ``LanguageClues``), done now."""
    sample = text[:SAMPLE_CHARACTERS]
    return LanguageClues(sample, read(sample, _py3langid_confidences))


def detect_language(
    text: str, *, country: str | None = None, clues: LanguageClues | None = None
) -> str | None:
    """The language ``text`` is written in, as one of ``LANGUAGES``, or None if we cannot tell.

    ``text`` is a question (subject and body, quotes and signatures removed); ``country`` is the
    ISO code of the sender's country as far as the service knows it, used to break ties between
    close languages (Serbian Latin, Croatian; Serbian Cyrillic, Macedonian). ``clues`` of the
    same text saves working out again what they hold.
    """
    # The first sentences tell the language; a long question costs no more than a short one.
    sample = text[:SAMPLE_CHARACTERS]
    if clues is not None and clues.sample == sample:
        return decided(clues.reading, country)
    return decide(sample, country, _py3langid_confidences)


def language_for(
    text: str,
    country: str | None,
    roster_language: str | None,
    clues: LanguageClues | None = None,
) -> str:
    """The language to write to a participant in.

    The roster's language if it is one we write in, else the language of their question, else
    their country's language, else English.
    """
    if roster_language in LANGUAGES:
        return roster_language
    detected = detect_language(text, country=country, clues=clues)
    if detected is not None:
        return detected
    return COUNTRY_LANGUAGES.get((country or "").upper(), "en")


def decide(text: str, country: str | None, guess: Guesser) -> str | None:
    """``detect_language`` with the detector passed in (the benchmark compares detectors)."""
    return decided(read(text, guess), country)


def read(text: str, guess: Guesser) -> Reading:
    """What ``text`` says of its language by itself (see ``Reading``)."""
    lower = text.lower()
    letters = _NOT_LETTERS.sub("", lower)
    if len(letters) < MIN_LETTERS:
        return Reading(settled=True)
    cyrillic = len(_NOT_CYRILLIC.sub("", lower))
    if cyrillic * 2 >= len(letters):
        return _cyrillic(lower, set(letters), guess)
    return _latin(text, guess)


def decided(reading: Reading, country: str | None) -> str | None:
    """The language ``reading`` means for a sender from ``country`` (an ISO code, or None)."""
    if reading.settled:
        return reading.language
    country = (country or "").upper() or None
    if reading.cues is not None:
        return serbian_or_croatian(reading.cues, country)
    best = _best(reading.confidences, country)
    if reading.cyrillic and best == "mk" and reading.serbian_or_macedonian and country == "RS":
        return "sr"
    return best if best in LANGUAGES else None


def _cyrillic(text: str, letters: set[str], guess: Guesser) -> Reading:
    if letters & (MACEDONIAN_ONLY | UKRAINIAN_OR_BELARUSIAN):
        return Reading(settled=True)
    if letters & SERBIAN_ONLY:
        return Reading(settled=True, language="sr")
    if letters & RUSSIAN_ONLY:
        return Reading(settled=True, language="ru")
    if BULGARIAN_VOWEL_YER.search(text):
        return Reading(settled=True, language="bg")
    if SERBIAN_DA_LI.search(text):
        return Reading(settled=True, language="sr")
    return Reading(
        settled=False,
        confidences=guess(text),
        cyrillic=True,
        serbian_or_macedonian=bool(letters & SERBIAN_OR_MACEDONIAN),
    )


def _latin(text: str, guess: Guesser) -> Reading:
    confidences = guess(text)
    serbo_croatian = sum(confidences.get(code, 0.0) for code in SERBO_CROATIAN)
    others = {code: value for code, value in confidences.items() if code not in SERBO_CROATIAN}
    best_other = max(others.values(), default=0.0)
    if serbo_croatian > 0 and serbo_croatian >= best_other:
        return Reading(settled=False, confidences=confidences, cues=cue_scores(text))
    return Reading(settled=False, confidences=others)


def serbian_or_croatian(cues: tuple[int, int], country: str | None) -> str:
    """Croatian ("hr") or Serbian Latin ("sr-Latn"), from a text's cues and the country.

    ``cues`` are the text's Croatian and Serbian cue counts (``cue_scores``).

    A sender from Serbia is taken to write Serbian unless the Croatian cues outnumber the Serbian
    ones by ``CLEAR_MARGIN``, and the other way round; otherwise the cues decide, and with no
    cues and no country we say Croatian, the variety general detectors call this text.
    """
    croatian, serbian = cues
    if country == "RS":
        return "hr" if croatian - serbian >= CLEAR_MARGIN else "sr-Latn"
    if country == "HR":
        return "sr-Latn" if serbian - croatian >= CLEAR_MARGIN else "hr"
    return "sr-Latn" if serbian > croatian else "hr"


def cue_scores(text: str) -> tuple[int, int]:
    """How many Croatian and how many Serbian cues ``text`` holds (each word counts once)."""
    folded = fold(text)
    croatian = serbian = 0
    known = _WORD_CUES.get
    for word in _WORD.findall(folded):
        cues = known(word)
        if cues is None:
            cues = _word_cues(word)
        croatian += cues[0]
        serbian += cues[1]
    serbian += len(SERBIAN_DA.findall(folded))
    croatian += len(CROATIAN_INFINITIVE_QUESTION.findall(folded))
    return croatian, serbian


def fold(text: str) -> str:
    """Lower case without diacritics, "đ" as "dj", as people type on phones and cues are kept."""
    # str.replace, not str.translate: a translation table costs a lookup per character.
    lower = text.lower().replace("đ", "dj").replace("ð", "dj")
    return _COMBINING.sub("", unicodedata.normalize("NFKD", lower))


# Whether a folded word is a Croatian and a Serbian cue, as words are met: the words of
# questions repeat, and one lookup is cheaper than trying every cue's prefix on each.
_WORD_CUES: dict[str, tuple[int, int]] = {}
_KNOWN_WORDS = 50_000


def _word_cues(word: str) -> tuple[int, int]:
    if len(_WORD_CUES) >= _KNOWN_WORDS:
        _WORD_CUES.clear()
    cues = _WORD_CUES[word] = (int(_matches(word, _CROATIAN)), int(_matches(word, _SERBIAN)))
    return cues


def _cue_table(cues: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    words = frozenset(cue for cue in cues if not cue.endswith("*"))
    prefixes = tuple(cue[:-1] for cue in cues if cue.endswith("*"))
    return words, prefixes


_CROATIAN = _cue_table(CROATIAN_CUES)
_SERBIAN = _cue_table(SERBIAN_LATIN_CUES)


def _matches(word: str, table: tuple[frozenset[str], tuple[str, ...]]) -> bool:
    words, prefixes = table
    return word in words or word.startswith(prefixes)


def _best(confidences: Mapping[str, float], country: str | None) -> str | None:
    """The detector's choice, letting the country's language or one of ours win a near tie."""
    if not confidences:
        return None
    top, top_value = max(confidences.items(), key=lambda item: item[1])
    if top_value <= 0:
        return None
    home = COUNTRY_LANGUAGES.get(country or "")
    if home is not None and confidences.get(home, 0.0) >= top_value - TIE_MARGIN:
        return home
    ours = [(value, code) for code, value in confidences.items() if code in LANGUAGES]
    if top not in LANGUAGES and ours:
        value, code = max(ours)
        if value >= top_value - OWN_LANGUAGE_MARGIN:
            return code
    return top


def warm_up() -> None:
    """Load the detector's model now (a service does it at start, not at its first question)."""
    _identifier()


@functools.cache
def _identifier() -> LanguageIdentifier:
    # Imported and loaded on first use (numpy and the model: a few tenths of a second), then
    # kept; commands that never read a question do not pay for it.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from qa_mailer.classify.ngram_walk import with_vector_walk

    identifier = with_vector_walk(LanguageIdentifier).from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([code for code in DETECTOR_LANGUAGES if code in identifier.labels])
    return identifier


def _py3langid_confidences(text: str) -> dict[str, float]:
    return {code: float(value) for code, value in _identifier().rank(text)}
