"""Questions that closely resemble each other: a resend, or the same question reworded a little.

RapidFuzz's WRatio scores two texts after folding case and punctuation away; a new question
scoring THRESHOLD or more against a recent open question of its session is marked as
resembling it, and the expert's copy and the digest say so (organisers may merge them).
bench/bench_similar.py measures scorers and thresholds on near-duplicates and distinct
questions in eight languages: WRatio at 88 found 99.7% of 1,570 near-duplicates (resends
with a greeting and signature, typing slips, words reordered, left out or added) with no
false alarm among 6,217 distinct pairs on the same topics (the closest scored 85.5).
"""

from __future__ import annotations

from collections.abc import Sequence

from rapidfuzz import fuzz, process, utils

# Scores are 0-100; see the figures above.
THRESHOLD = 88.0
# Only the start of a long question is compared: resends and rewordings differ early or not
# at all, and a long text must not make each comparison slow.
COMPARED_CHARACTERS = 200
# Shorter texts ("Hvala!", "OK") resemble too much to say anything.
MIN_CHARACTERS = 20
# A new question is compared with this many of its session's latest open questions: a
# resend comes soon after the first mail, and the cost per question stays flat.
RECENT_QUESTIONS = 30


# How much of a text its comparable start is made from (the open questions are read from
# the database this far only).
READ_CHARACTERS = COMPARED_CHARACTERS * 2


def comparable(text: str) -> str:
    """The text as it is compared: lower case, no punctuation, single spaces, its start only."""
    return " ".join(utils.default_process(text[:READ_CHARACTERS]).split())[:COMPARED_CHARACTERS]


def most_similar(text: str, candidates: Sequence[tuple[int, str]]) -> int | None:
    """The id of the candidate (id, comparable text) most like ``text``, if alike enough."""
    if not candidates or len(text) < MIN_CHARACTERS:
        return None
    found = process.extractOne(
        text,
        {number: body for number, body in candidates if len(body) >= MIN_CHARACTERS},
        scorer=fuzz.WRatio,
        processor=None,
        score_cutoff=THRESHOLD,
    )
    return None if found is None else int(found[2])
