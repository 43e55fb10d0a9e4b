"""py3langid's byte n-gram count, done with numpy on long samples.

py3langid finds the byte n-grams of a text with an Aho-Corasick automaton: one table lookup
per byte, in a Python loop. On a question's 600-character sample (1,200 bytes of Cyrillic)
that loop is two thirds of the detector's time. The automaton's states are trie nodes no
deeper than a few bytes (6 in the model py3langid ships), so the state after byte i depends
only on the last ``depth`` bytes: feeding every window of ``depth`` bytes from the start
state, all windows at once, gives every state in ``depth`` numpy passes over the text.

The counts, and the order they are summed in, are those of py3langid's loop, so the scores
are the same to the last bit (tests/unit/test_ngram_walk.py compares them). Below
``VECTOR_WALK_BYTES`` the loop is quicker, and it is used; so it is for a model whose internals
are not the ones read here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Samples shorter than this (in UTF-8 bytes) go through py3langid's own loop: numpy's fixed
# cost per call makes it the slower one below about this length.
VECTOR_WALK_BYTES = 256
# A model whose automaton is deeper than this is walked byte by byte: each level is a pass.
MAX_DEPTH = 12


def with_vector_walk(identifier_class: type[Any]) -> type[Any]:
    """A subclass of py3langid's LanguageIdentifier that counts n-grams of long texts with numpy."""

    class VectorWalkIdentifier(identifier_class):  # type: ignore[misc]
        _walk: _Walk | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._walk = _Walk.of(self)

        def _raw_score(self, text: bytes) -> Any:
            walk = self._walk
            if walk is None or len(text) < VECTOR_WALK_BYTES:
                return super()._raw_score(text)
            features, counts = walk.counts(text)
            if not features.size:
                return super()._raw_score(text)
            # As py3langid's _sparse_score, with the counts in the order its loop meets them.
            return np.log1p(counts.astype(np.float32)) @ self.nb_ptc[features] + self.nb_pc

    return VectorWalkIdentifier


class _Walk:
    """The automaton as numpy arrays, and how deep its states go."""

    def __init__(self, moves: np.ndarray, bases: np.ndarray, output: np.ndarray, depth: int):
        self._moves = moves  # row start + byte -> next state
        self._bases = bases  # state -> where its row starts in moves
        self._output = output  # state -> feature, or -1
        self._depth = depth
        self._start = moves[bases[0] : bases[0] + 256].astype(np.intp)

    @classmethod
    def of(cls, identifier: Any) -> _Walk | None:
        """The walk of ``identifier``'s automaton, or None if it is not laid out as expected."""
        try:
            moves = np.frombuffer(identifier.tk_nextmove, dtype=identifier.tk_nextmove.typecode)
            bases = np.asarray(identifier.tk_row, dtype=np.intp) << 8
            output = np.asarray(identifier.tk_output, dtype=np.intp)
        except (AttributeError, TypeError, ValueError):
            return None
        if moves.size % 256 or len(bases) != len(output) or not len(bases):
            return None
        if bases.min() < 0 or bases.max() + 256 > moves.size or moves.max() >= len(bases):
            return None
        depth = _depth(moves, bases)
        return None if depth is None else cls(moves, bases, output, depth)

    def counts(self, text: bytes) -> tuple[np.ndarray, np.ndarray]:
        """The features ``text`` holds and how often, in the order of their first occurrence."""
        data = np.frombuffer(text, dtype=np.uint8).astype(np.intp)
        # After pass k, states[i] is where the automaton is after bytes i-k+1..i from the start.
        states = self._start[data]
        rest = data[1:]
        for _ in range(1, self._depth):
            following = states.copy()
            following[1:] = self._moves[self._bases[states[:-1]] + rest]
            states = following
        found = self._output[states]
        found = found[found >= 0]
        features, first, counts = np.unique(found, return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        return features[order], counts[order]


def _depth(moves: np.ndarray, bases: np.ndarray) -> int | None:
    """How many bytes from the start the deepest state is (breadth first), or None if over
    MAX_DEPTH or if some state cannot be reached (then the automaton is not a plain trie)."""
    seen = np.zeros(len(bases), dtype=bool)
    seen[0] = True
    frontier = np.zeros(1, dtype=np.intp)
    every_byte = np.arange(256, dtype=np.intp)
    depth = 0
    while True:
        reached = np.zeros(len(bases), dtype=bool)
        starts = np.unique(bases[frontier])
        reached[moves[(starts[:, None] + every_byte).ravel()]] = True
        reached &= ~seen
        frontier = np.flatnonzero(reached)
        if not frontier.size:
            break
        depth += 1
        if depth > MAX_DEPTH:
            return None
        seen |= reached
    return depth if seen.all() else None
