"""How well similar-question detection separates near-duplicates from distinct questions.

Near-duplicates are made from each question of tests/data/languages/questions.tsv the way
participants make them: a resend with a greeting and a signature, two typing slips, words
in another order, a word left out, a word added. Distinct pairs are every two different
questions of the same language (the same topics: clusters, export, funding). For each
scorer and threshold it prints, per language, the share of near-duplicates found (recall)
and the share of distinct pairs wrongly flagged (false alarms), and the time per comparison.

    .venv/bin/python bench/bench_similar.py
"""

from __future__ import annotations

import itertools
import random
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from rapidfuzz import fuzz

from qa_mailer.classify.similar import comparable

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "languages" / "questions.tsv"
GREETINGS = {
    "bg": ("Здравейте,", "Поздрави,\nИван"),
    "ru": ("Здравствуйте!", "С уважением,\nОльга"),
    "sr": ("Поштовани,", "Срдачан поздрав,\nМилан"),
    "sr-Latn": ("Poštovani,", "Srdačan pozdrav,\nMilan"),
    "hr": ("Poštovani,", "Lijep pozdrav,\nAna"),
    "tr": ("Merhaba,", "Saygılarımla,\nAyşe"),
    "it": ("Buongiorno,", "Cordiali saluti,\nMarco"),
    "en": ("Hello,", "Best regards,\nJohn"),
}


def typos(text: str, rng: random.Random) -> str:
    letters = list(text)
    for _ in range(2):
        i = rng.randrange(1, max(2, len(letters) - 1))
        letters[i - 1], letters[i] = letters[i], letters[i - 1]
    return "".join(letters)


def variants(language: str, text: str, rng: random.Random) -> dict[str, str]:
    hello, bye = GREETINGS.get(language, GREETINGS["en"])
    words = text.split()
    reordered = words[len(words) // 2 :] + words[: len(words) // 2]
    dropped = [w for i, w in enumerate(words) if i != len(words) // 2] or words
    added = [*words[:2], words[0].lower(), *words[2:]]
    return {
        "resend with greeting": f"{hello}\n\n{text}\n\n{bye}",
        "two typing slips": typos(text, rng),
        "words reordered": " ".join(reordered),
        "a word left out": " ".join(dropped),
        "a word added": " ".join(added),
    }


SCORERS: dict[str, Callable[..., float]] = {
    "ratio": fuzz.ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "WRatio": fuzz.WRatio,
}


def main() -> None:
    rng = random.Random(11)
    by_language: dict[str, list[str]] = defaultdict(list)
    for line in DATA.read_text(encoding="utf-8").splitlines():
        language, _, text = line.split("\t", 2)
        if language != "-":
            by_language[language].append(text)
    near = {
        language: [
            (comparable(q), comparable(v), kind)
            for q in questions
            for kind, v in variants(language, q, rng).items()
        ]
        for language, questions in by_language.items()
    }
    distinct = {
        language: [(comparable(a), comparable(b)) for a, b in itertools.combinations(qs, 2)]
        for language, qs in by_language.items()
    }
    print(
        f"{sum(map(len, near.values()))} near-duplicate pairs, "
        f"{sum(map(len, distinct.values()))} distinct pairs, {len(by_language)} languages"
    )
    for name, scorer in SCORERS.items():
        for threshold in (80, 85, 88, 90):
            found = 0
            alarms = total_distinct = 0
            rows = []
            kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for language in sorted(near):
                hits = sum(scorer(a, b, processor=None) >= threshold for a, b, _ in near[language])
                for a, b, kind in near[language]:
                    kinds[kind][0] += scorer(a, b, processor=None) >= threshold
                    kinds[kind][1] += 1
                false = sum(
                    scorer(a, b, processor=None) >= threshold for a, b in distinct[language]
                )
                found += hits
                alarms += false
                total_distinct += len(distinct[language])
                rows.append(
                    f"{language} {100 * hits / len(near[language]):.0f}%/"
                    f"{100 * false / len(distinct[language]):.2f}%"
                )
            recall = 100 * found / sum(map(len, near.values()))
            false_rate = 100 * alarms / total_distinct
            weakest = min(kinds.items(), key=lambda item: item[1][0] / item[1][1])
            print(
                f"{name:>17} >= {threshold}: found {recall:5.1f}%, false alarms {false_rate:.3f}% "
                f"({alarms}); weakest: {weakest[0]} {100 * weakest[1][0] / weakest[1][1]:.0f}%"
            )
            print(f"{'':22}{'  '.join(rows)}")
    pairs = [pair for pairs in distinct.values() for pair in pairs][:20000]
    started = time.perf_counter()
    for a, b in pairs:
        fuzz.token_sort_ratio(a, b, processor=None)
    per = (time.perf_counter() - started) / len(pairs)
    print(f"token_sort_ratio: {per * 1e6:.1f} µs per comparison ({len(pairs)} pairs)")


if __name__ == "__main__":
    main()
