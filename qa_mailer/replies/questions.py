"""Which question a piece of quoted text is: by its ``[Q-17]`` reference, or by its words.

Quoted text may be re-wrapped, shortened to the sentence that matters, or carry the
participant's name line; words are compared without case or diacritics, in any script.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from qa_mailer.replies.lines import MAX_LINE
from qa_mailer.replies.model import QuestionRef

# Any hyphen or dash people (or their clients) put in "Q-17".
DASH = r"[-‐‑‒–—]"
# "[Q-17]" as the service writes it before each question.
BRACKETED_REF = re.compile(rf"\[\s*([A-Za-z]{{1,4}})\s*{DASH}\s*(\d{{1,7}})\s*\]")
# "Q-17" in running text ("Question Q-17 from ...", "see Q-18").
MENTIONED_REF = re.compile(rf"(?<![\w-])([Qq]){DASH}(\d{{1,7}})(?![\w-])")
_ANY_REF = re.compile(rf"(?<![\w-])([A-Za-z]{{1,4}})\s*{DASH}\s*(\d{{1,7}})(?![\w-])")
_WORD = re.compile(r"\w+")

# Below this score a quote is not taken to be a question's text.
_MATCH_THRESHOLD = 0.5
# Scores closer than this are a tie, settled by the questions' order.
_TIE = 0.05


def ref_key(prefix: str, number: str) -> str:
    """The canonical form of a reference: "q", "017" -> "Q-17"."""
    return f"{prefix.upper()}-{int(number)}"


def canonical_ref(ref: str) -> str:
    """The canonical form of a reference as written anywhere ("q‑17 " -> "Q-17")."""
    match = _ANY_REF.search(ref)
    return ref_key(match.group(1), match.group(2)) if match else ref.strip().upper()


@dataclass(frozen=True)
class _Profile:
    words: frozenset[str]
    pairs: frozenset[tuple[str, str]]


def _profile(text: str) -> _Profile:
    text = _ANY_REF.sub(" ", text)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    words = [word for word in _WORD.findall(plain) if len(word) > 1 or word.isdigit()]
    return _Profile(frozenset(words), frozenset(itertools.pairwise(words)))


def _overlap(a: frozenset[object], b: frozenset[object]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


class Questions:
    """The questions a reply answers, looked up by reference or by text."""

    def __init__(self, questions: Sequence[QuestionRef]) -> None:
        self.items = tuple(questions)
        self._refs = {canonical_ref(question.ref): question.ref for question in self.items}
        self._profiles = [_profile(question.text[:20_000]) for question in self.items]

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def refs(self) -> list[str]:
        """The references in the order the questions were given."""
        return [question.ref for question in self.items]

    def resolve(self, prefix: str, number: str) -> str:
        """The reference as the caller spells it, or the canonical form if it is unknown."""
        key = ref_key(prefix, number)
        return self._refs.get(key, key)

    def refs_in(self, text: str, *, bracketed_only: bool = False) -> Iterator[str]:
        """The references written in ``text``, in order."""
        head = text[:MAX_LINE]
        found = [
            (match.start(), match.end(), self.resolve(match.group(1), match.group(2)))
            for match in BRACKETED_REF.finditer(head)
        ]
        if not bracketed_only:
            # "Q-18" inside "[Q-18]" is the same reference, not a second one.
            spans = [(start, end) for start, end, _ in found]
            found.extend(
                (match.start(), match.end(), self.resolve(match.group(1), match.group(2)))
                for match in MENTIONED_REF.finditer(head)
                if not any(start <= match.start() < end for start, end in spans)
            )
        for _, _, ref in sorted(found):
            yield ref

    def share(self, ref: str, text: str) -> float:
        """The part of the words of ``text`` that the question ``ref`` contains (0 to 1)."""
        if ref not in self.refs:
            return 0.0
        words = _profile(text[:MAX_LINE]).words
        known = self._profiles[self.refs.index(ref)].words
        return len(words & known) / len(words) if words else 1.0

    def match(self, text: str, after: str | None = None) -> str | None:
        """The reference of the question whose text ``text`` quotes, or None.

        ``after`` is the question matched just before; on a tie the next one in order wins,
        since people answer questions in the order they were asked.
        """
        if not self.items:
            return None
        quoted = _profile(text[:20_000])
        if len(quoted.words) < 2:
            return None
        scores: list[tuple[float, int]] = []
        for index, profile in enumerate(self._profiles):
            common = len(quoted.words & profile.words)
            if common < 2:
                continue
            words = _overlap(quoted.words, profile.words)
            pairs = _overlap(quoted.pairs, profile.pairs)
            scores.append(((words + pairs) / 2, index))
        if not scores:
            return None
        best = max(score for score, _ in scores)
        if best < _MATCH_THRESHOLD:
            return None
        tied = [index for score, index in scores if best - score <= _TIE]
        position = self.refs.index(after) if after in self.refs else -1
        later = [index for index in tied if index > position]
        return self.items[min(later) if later else min(tied)].ref
