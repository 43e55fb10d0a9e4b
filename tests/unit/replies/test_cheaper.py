"""Cheaper ways to the same result, each against the way it was first written.

The first versions are kept here, word for word, as the reference the faster code must match.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import pytest

from qa_mailer.replies import QuestionRef, items, parse_reply, trimmed_reply, vocab
from qa_mailer.replies.attribution_text import FRAME
from qa_mailer.replies.files import load_reply_file
from qa_mailer.replies.headers import HEADER_RULES, may_start_header
from qa_mailer.replies.items import Item, split_items
from qa_mailer.replies.lines import (
    _INITIALS,
    _MARKERS,
    MAX_CHARS,
    MAX_LINE,
    Line,
    normalise,
    quote_prefix,
    split_lines,
)
from qa_mailer.replies.questions import Questions
from qa_mailer.replies.signatures import (
    _EDGES,
    _LINK,
    _MARKDOWN_LINK,
    _MAX_TAGLINE,
    TAGLINE_RULES,
    is_tagline,
    plain,
)
from qa_mailer.replies.trim import join
from qa_mailer.replies.window import markers, window

_ALL = "".join(chr(code) for code in range(sys.maxunicode + 1) if not 0xD800 <= code < 0xE000)

# normalise() as first written: str.translate over every character.
_CONTROLS = "".join(chr(c) for c in range(32) if chr(c) not in "\t\n")
_INVISIBLE = (
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u1427"
)
_TRANSLATE = str.maketrans(
    {
        **dict.fromkeys(_INVISIBLE + _CONTROLS + "\x7f"),
        **dict.fromkeys("\xa0\u2007\u202f\u3000", " "),
    }
)


def _normalise_first(text: str) -> str:
    text = text[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    return text.translate(_TRANSLATE)


@pytest.mark.parametrize(
    "text",
    [
        _ALL[: MAX_CHARS // 2],
        _ALL[MAX_CHARS // 2 :],
        _ALL * 2,
        "plain ASCII\twith a tab\r\nand CRLF",
        "Kako klaster pomaže?\nКак дела?\n",
        "Gmail's dot\u1427 alone",
        "a\xa0b\u2007c\u202fd\u3000e",
        "private use \ue000 and a line separator \u2028",
        "\x00\x01\x7f" * 100,
        "",
    ],
)
def test_normalise_changes_what_translate_changed(text: str) -> None:
    # Compared as a bool: pytest would print a million characters on a difference.
    same = normalise(text) == _normalise_first(text)
    assert same


# plain() and is_tagline() as first written: both substitutions on every line, then folding.


def _plain_first(text: str) -> str:
    text = _MARKDOWN_LINK.sub(r"\1", text[:MAX_LINE])
    text = _LINK.sub(" ", text)
    return vocab.fold(" ".join(text.split()).strip(_EDGES))


def _is_tagline_first(body: str) -> bool:
    words = _plain_first(body)
    if not words or len(words) > _MAX_TAGLINE:
        return False
    return any(rule.check(words) for rule in TAGLINE_RULES)


@pytest.mark.parametrize(
    "line",
    [
        "Sent from my iPhone",
        "  *Sent from my iPhone*  ",
        "[Sent from my iPhone](https://example.com/a)",
        "Se[nt](http://example.com) from my iPhone",
        "Sent <https://example.com/x> from my iPhone",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "HTTP://EXAMPLE.COM sent from my phone",
        "Отправлено с iPhone",
        "İPHONE'UMDAN GÖNDERİLDİ",
        "From my iPhone " + "\u0307" * 200,
        "Sent from my iPhone " + "x" * 100,
        "Sent from my iPhone " + "x" * 89,
        "Sent from my iPhone " + "x" * 90,
        "Sent from my iPhone " + "x" * 91,
        "Se[nt](x) from my iPhone",
        "Sent from my iPhone " + "ß" * 60,
        "«" * 300 + "Sent from my iPhone" + "»" * 300,
        "Sent   from\u2003my\tiPhone",
        "a" * 2000,
        "",
    ],
)
def test_plain_and_is_tagline_give_what_they_gave(line: str) -> None:
    assert plain(line) == _plain_first(line)
    assert is_tagline(line) == _is_tagline_first(line)


def test_join_collapses_blank_runs_as_before() -> None:
    lines = ["a", "", "", "", "b  ", "", "c", "", "", "", "", "", "\t", "d", "", "", "e", ""]
    text = "\n".join(line.rstrip() for line in lines)
    assert join(lines) == re.sub(r"\n{3,}", "\n\n", text).strip("\n")


# Header rules as first run: on every line may_start_header did not rule out.


@pytest.mark.parametrize(
    "frame", ["--", "-- ", "-----", "— — —", "___________", "==", "~~~", "* * *", "-*-*-"]
)
@pytest.mark.parametrize(
    "after",
    [
        "",
        "From: Ana\nSent: Monday 10:00\nTo: QA\nSubject: x",
        "On 3 March 2025 at 10:00 Ana <ana@drvo.example.hr> wrote:",
        "Original Message\n-----",
        "wrote:",
    ],
)
def test_a_line_of_frame_characters_starts_no_header(frame: str, after: str) -> None:
    # may_start_header answers no at once for these; every rule must agree.
    assert not frame.strip(FRAME)
    lines = split_lines(f"{frame}\n{after}")
    assert not may_start_header(lines[0].body)
    found = window(lines, 0, 0)
    assert all(rule.check(lines, 0, found) is None for rule in HEADER_RULES)


# quote_prefix() as first written: both patterns on every line.


def _quote_prefix_first(raw: str) -> tuple[int, int]:
    head = raw[:MAX_LINE]
    depth = 0
    end = 0
    initials = _INITIALS.match(head)
    if initials:
        depth, end = 1, initials.end()
    markers = _MARKERS.match(head, end)
    if markers and markers.end() > end:
        depth += markers.group().count(">")
        end = markers.end()
    return depth, end


def test_quote_prefix_gives_what_it_gave() -> None:
    rng = random.Random(3)
    lines = [
        "".join(rng.choice(" \t>ABCx<") for _ in range(rng.randint(0, 9))) for _ in range(20000)
    ]
    lines += [
        "  JS> text",
        "   > x",
        "    > x",
        "ABC>",
        "ABCD> x",
        " AB>> x",
        "  ABC> x",
        "x" * 5 + ">",
    ]
    for line in lines:
        assert quote_prefix(line) == _quote_prefix_first(line), line


# window() as first written: every line's text folded at once.


def _window_first(lines: list[Line], start: int, depth: int) -> tuple[list[int], list[str]]:
    indexes: list[int] = []
    texts: list[str] = []
    for index in range(start, min(len(lines), start + 6)):
        line = lines[index]
        if line.depth < depth:
            break
        if line.blank:
            continue
        raw = line.raw[:MAX_LINE]
        text = raw if depth == 0 else markers(depth).sub("", raw)
        indexes.append(index)
        texts.append(vocab.fold(text.strip()))
        if len(indexes) == 4:
            break
    return indexes, texts


def test_windows_hold_what_they_held() -> None:
    body = (
        "Answer\n\n> On Mon, 1 Dec 2025 at 10:00, Ana\n> <ana@drvo.example.hr>\n>> wrote:\n"
        ">\n> JS> quoted\n>   İSTANBUL\n\n\n> text\n>> deeper\n"
    )
    lines = split_lines(body)
    for start in range(len(lines)):
        for depth in range(3):
            found = window(lines, start, depth)
            indexes, texts = _window_first(lines, start, depth)
            assert list(found.indexes) == indexes
            # Read out of order, by slice and whole, as the rules do.
            assert found.texts[-1:] == texts[-1:] and found.texts[:2] == texts[:2]
            assert list(found.texts) == texts and len(found.texts) == len(texts)


def test_fold_in_place_gives_what_it_gave() -> None:
    texts = [_ALL[i : i + 5000] for i in range(0, len(_ALL), 5000)]
    texts += ["plain", "İstanbul", "Straße", "ﬁne", "a\u0307b", "ΣΑΣ", "", "\u0307"]
    for text in texts:
        assert vocab.fold_in_place(text) == "".join(vocab.fold(c)[:1] or c for c in text)


# split_items() as first written: the reference-head pattern on every line.


def _split_items_first(
    text: str, order: list[str], questions: Questions
) -> tuple[str, list[Item]] | None:
    lines = text.split("\n")
    heads = items._ref_heads(lines, questions) or items._number_heads(lines, order)
    if not heads:
        return None
    found: list[Item] = []
    for number, (start, refs, rest) in enumerate(heads):
        end = heads[number + 1][0] if number + 1 < len(heads) else len(lines)
        body = "\n".join([rest, *lines[start + 1 : end]]).strip("\n")
        found.append(Item(refs, body))
    return "\n".join(lines[: heads[0][0]]).strip("\n"), found


@pytest.mark.parametrize(
    "text",
    [
        "Q-17: yes\nQ-18: no",
        "q17. yes\n\nQ 18) no",
        "q17. yes\nq-18: no",
        "Re Q‑17 - yes\nОтвет на Q–18: нет",
        "[Q-17] yes\n[ q - 18 ] no",
        "(Q-17, Q-18 and 19): both",
        "1. yes\n2. no\n3. maybe",
        "Answer: yes\nno list at all",
        "QQ-17\nQ\n17: split over lines",
        "Q-1234567: too long a number",
        "ǫ-17: not a Q",
        "",
    ],
)
def test_split_items_gives_what_it_gave(text: str) -> None:
    questions = Questions((QuestionRef("Q-17", "a"), QuestionRef("Q-18", "b")))
    for order in ([], ["Q-17", "Q-18"], ["Q-17", "Q-18", "Q-19"]):
        assert split_items(text, order, questions) == _split_items_first(text, order, questions)


def test_only_q_and_q_match_q_ignoring_case() -> None:
    # What items._ANY_REF relies on.
    pattern = re.compile("Q", re.IGNORECASE)
    assert [char for char in _ALL if pattern.fullmatch(char)] == ["Q", "q"]


DATA = Path(__file__).resolve().parents[2] / "data" / "replies"


def _every_reply_in_the_corpora() -> list[tuple[str, str | None, str | None]]:
    found = []
    for path in sorted(DATA.rglob("*")):
        inputs = path.suffix.casefold() in (".txt", ".html", ".eml")
        if inputs and "expected" not in path.relative_to(DATA).parts:
            text, html = load_reply_file(path)
            found.append((str(path.relative_to(DATA)), text, html))
    return found


def test_trimmed_reply_is_the_reply_parse_reply_gives() -> None:
    # trimmed_reply (a participant's question) skips looking for answers where they cannot
    # change the reply; over every reply of the corpora it gives parse_reply's reply.
    cases = _every_reply_in_the_corpora()
    unquoted = 0
    for name, text, html in cases:
        assert trimmed_reply(text, html) == parse_reply(text, html).reply, name
        unquoted += bool(text) and not any(
            line.lstrip().startswith(">") for line in (text or "").splitlines()
        )
    # Both ways through the parser are taken: bodies that quote nothing, and the others.
    assert 20 <= unquoted < len(cases) - 20, (unquoted, len(cases))
