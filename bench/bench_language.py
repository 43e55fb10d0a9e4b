"""Language detectors measured on our own short questions (tests/data/languages/questions.tsv).

For each candidate library: accuracy per language on its own ("raw": Serbian on Latin text
counts as sr-Latn, since no library knows Serbian Latin; Bosnian counts as wrong) and behind
the rules of ``qa_mailer.classify.language`` (script letters, Serbian/Croatian cues, country as
tie-breaker), with and without the sender's country; the mean time per call once warm, the
first call (models loaded), the import time, peak memory and the size installed.

Each candidate runs in a fresh interpreter so that import time and memory are its own. Rows
labelled "-" expect None (too short, or a language we do not write in).

Only py3langid is a dependency of qa-mailer; install the others to compare them:
    pip install lingua-language-detector langdetect
A candidate that is not installed is skipped.

Usage: python bench/bench_language.py [CANDIDATE ...]
"""

from __future__ import annotations

import csv
import json
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = ROOT / "tests" / "data" / "languages" / "questions.tsv"
COLUMNS = ("en", "bg", "ru", "sr", "sr-Latn", "hr", "tr", "it", "-")

Guesser = Callable[[str], Mapping[str, float]]


def rows() -> list[tuple[str, str | None, str]]:
    with QUESTIONS.open(encoding="utf-8") as file:
        return [
            (language, None if country == "-" else country, text)
            for language, country, text in csv.reader(file, delimiter="\t")
        ]


def lingua_guesser(low_accuracy: bool) -> Guesser:
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    from qa_mailer.classify.language import DETECTOR_LANGUAGES

    languages = [
        Language.from_iso_code_639_1(IsoCode639_1.from_str(code)) for code in DETECTOR_LANGUAGES
    ]
    builder = LanguageDetectorBuilder.from_languages(*languages)
    detector = (builder.with_low_accuracy_mode() if low_accuracy else builder).build()

    def guess(text: str) -> dict[str, float]:
        return {
            value.language.iso_code_639_1.name.lower(): value.value
            for value in detector.compute_language_confidence_values(text)
        }

    return guess


def py3langid_guesser() -> Guesser:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from qa_mailer.classify.language import DETECTOR_LANGUAGES

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([code for code in DETECTOR_LANGUAGES if code in identifier.labels])

    def guess(text: str) -> dict[str, float]:
        return {code: float(value) for code, value in identifier.rank(text)}

    return guess


def langdetect_guesser() -> Guesser:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    # langdetect samples at random; a fixed seed makes the figures repeatable.
    DetectorFactory.seed = 0

    def guess(text: str) -> dict[str, float]:
        try:
            return {found.lang: found.prob for found in detect_langs(text)}
        except LangDetectException:
            return {}

    return guess


CANDIDATES: dict[str, tuple[str, Callable[[], Guesser]]] = {
    "lingua": ("lingua-language-detector", lambda: lingua_guesser(low_accuracy=False)),
    "lingua-low": ("lingua-language-detector", lambda: lingua_guesser(low_accuracy=True)),
    "py3langid": ("py3langid", py3langid_guesser),
    "langdetect": ("langdetect", langdetect_guesser),
}
IMPORTS = {
    "lingua": "lingua",
    "lingua-low": "lingua",
    "py3langid": "py3langid.langid",
    "langdetect": "langdetect",
}


def raw_answer(text: str, guess: Guesser) -> str | None:
    """The library's own first choice, named as our codes where it can be."""
    confidences = guess(text)
    if not confidences:
        return None
    top = max(confidences, key=lambda code: confidences[code])
    if confidences[top] <= 0:
        # Every language at zero ("12345", "?"): the library has no answer.
        return None
    latin = not any("\u0400" <= char <= "\u04ff" for char in text)
    if top == "sr" and latin:
        return "sr-Latn"
    return top


def accuracy(answers: list[tuple[str, str | None]]) -> dict[str, float]:
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for expected, got in answers:
        total[expected] += 1
        ours = got if got in COLUMNS else None
        right[expected] += (ours is None) if expected == "-" else (ours == expected)
    return {language: 100.0 * right[language] / total[language] for language in total}


def measure(name: str) -> dict[str, object]:
    """One candidate's figures, in this interpreter (called in a fresh one per candidate)."""
    started = time.perf_counter()
    __import__(IMPORTS[name])
    import_seconds = time.perf_counter() - started

    from qa_mailer.classify.language import decide

    package, build = CANDIDATES[name]
    questions = rows()
    # The first call includes loading the model, as it would in the service.
    started = time.perf_counter()
    guess = build()
    guess(questions[0][2])
    guess("Какви са възможностите за финансиране?")
    first_call = time.perf_counter() - started
    raw = [(language, raw_answer(text, guess)) for language, _, text in questions]
    started = time.perf_counter()
    for _, _, text in questions:
        guess(text)
    per_call = (time.perf_counter() - started) / len(questions)
    with_country = [
        (language, decide(text, country, guess)) for language, country, text in questions
    ]
    without_country = [(language, decide(text, None, guess)) for language, _, text in questions]
    files = metadata.distribution(package).files or []
    size = sum(file.locate().stat().st_size for file in files if Path(file.locate()).exists())
    return {
        "raw": accuracy(raw),
        "rules+country": accuracy(with_country),
        "rules": accuracy(without_country),
        "per_call_ms": 1000 * per_call,
        "first_call_s": first_call,
        "import_s": import_seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "size_mb": size / 1e6,
        "version": metadata.version(package),
    }


def main(names: list[str]) -> None:
    print(f"{len(rows())} questions from {QUESTIONS.relative_to(ROOT)}")
    header = f"{'candidate':<12} {'mode':<14}" + "".join(f"{c:>8}" for c in COLUMNS)
    costs = []
    print(header)
    for name in names:
        try:
            metadata.version(CANDIDATES[name][0])
        except metadata.PackageNotFoundError:
            print(f"{name:<12} not installed")
            continue
        output = subprocess.run(
            [sys.executable, __file__, "--one", name], capture_output=True, text=True, check=True
        ).stdout
        figures = json.loads(output)
        for mode in ("raw", "rules+country", "rules"):
            cells = "".join(f"{figures[mode].get(c, 0.0):>8.1f}" for c in COLUMNS)
            print(f"{name:<12} {mode:<14}{cells}")
        costs.append(
            f"{name:<12} {figures['version']:<8} {figures['per_call_ms']:>9.2f} ms/call"
            f" {figures['first_call_s']:>7.2f} s load+first call {figures['import_s']:>6.2f} s import"
            f" {figures['peak_mb']:>6.0f} MB peak {figures['size_mb']:>6.1f} MB installed"
        )
    print("\naccuracy in %; raw = the library's first choice, rules = qa_mailer's rules on it")
    print()
    print("\n".join(costs))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(measure(sys.argv[2])))
    else:
        main(sys.argv[1:] or list(CANDIDATES))
