"""The smaller pieces of reply parsing, one behaviour per test."""

from __future__ import annotations

import pytest

from qa_mailer.replies import QuestionRef, parse_reply
from qa_mailer.replies.classify import classify
from qa_mailer.replies.closings import split_greeting, strip_closing
from qa_mailer.replies.headers import find_glued_attribution
from qa_mailer.replies.html_quotes import html_to_marked_text
from qa_mailer.replies.items import split_items
from qa_mailer.replies.lines import HEADER_MARK, Kind, normalise, split_lines
from qa_mailer.replies.questions import Questions, canonical_ref
from qa_mailer.replies.template import is_template

QUESTIONS = (
    QuestionRef("Q-17", "How can a small furniture maker join an existing cluster abroad?"),
    QuestionRef("Q-18", "Which public funds support cluster internationalisation?"),
    QuestionRef("Q-19", "Is the Italian district model transferable to Turkey?"),
)


# Lines


def test_normalise_removes_invisible_characters_and_unifies_line_ends() -> None:
    assert normalise("a\u200b\u200eb\r\nc\rd\xa0e\u1427") == "ab\nc\nd e"


@pytest.mark.parametrize(
    ("raw", "depth", "body"),
    [
        ("> text", 1, "text"),
        (">> text", 2, "text"),
        ("> > > text", 3, "text"),
        (">text", 1, "text"),
        ("JS> text", 1, "text"),
        ("Richard> text", 0, "Richard> text"),
        (">>> >>>  http://example.com <<<", 0, ">>> >>>  http://example.com <<<"),
        ("-> not a quote", 0, "-> not a quote"),
    ],
)
def test_quote_depth(raw: str, depth: int, body: str) -> None:
    (line,) = split_lines(raw)
    assert (line.depth, line.body) == (depth, body)


def test_a_link_wrapped_out_of_a_quote_stays_quoted() -> None:
    lines = split_lines("> see (http://example.com/a\n_b=1)\n> more")
    assert [line.kind for line in lines] == [Kind.QUOTE] * 3


def test_an_answer_between_quoted_lines_is_not_taken_for_a_wrapped_link() -> None:
    lines = split_lines("> [Q-17] How?\nLike this.\n> [Q-18] Why?")
    assert lines[1].kind is Kind.TEXT


# Headers


def test_attribution_glued_to_the_reply_is_split_off() -> None:
    lines = classify(split_lines(normalise("ok thanks On Mon, 3 Mar 2025 at 10:15, X wrote:\n> q")))
    assert [(line.raw, line.kind) for line in lines[:2]] == [
        ("ok thanks", Kind.TEXT),
        ("On Mon, 3 Mar 2025 at 10:15, X wrote:", Kind.HEADER),
    ]


def test_a_whole_attribution_is_not_split_at_an_inner_opener() -> None:
    assert find_glued_attribution("On 11-Apr-2011, at 6:54 PM, R <r@example.com> wrote:") is None


def test_attribution_without_time_or_address_needs_a_quote_under_it() -> None:
    before_quote = parse_reply(text="Yes.\n\nOn 3 March 2025 the commission wrote:\n> old")
    before_text = parse_reply(text="Yes.\n\nOn 3 March 2025 the commission wrote:\nClusters.")
    assert before_quote.new_text == "Yes."
    assert before_text.new_text.endswith("Clusters.")


def test_header_over_unquoted_text_cuts_the_rest() -> None:
    text = "Answer.\n\nFrom: A <a@x.org>\nSent: Monday\nTo: B\nSubject: S\n\nOld mail.\n\nMore."
    assert parse_reply(text=text).reply == "Answer."


def test_header_at_the_top_over_text_is_only_dropped() -> None:
    assert parse_reply(text="On 1.2.2016 10:00, X <x@y.org> wrote:\n\nNew text.").reply == (
        "New text."
    )


# Signatures and taglines


def test_signature_runs_to_the_next_quote_only() -> None:
    text = "Preface.\n-- \nMaria\nBologna\n\n> [Q-17] How?\n\nLike this."
    parsed = parse_reply(text=text)
    assert parsed.new_text == "Preface.\n\nLike this."
    assert parsed.answers[0].answer == "Like this."


def test_tagline_drops_what_follows_it_up_to_the_quote() -> None:
    text = "Yes.\n\nSent from my iPhone\nFrom My Iphone 6\n\n> old"
    assert parse_reply(text=text).new_text == "Yes."


def test_long_underscore_rule_with_a_short_tail_is_a_signature() -> None:
    assert parse_reply(text="Yes.\n\n" + "_" * 20 + "\nMaria Rossi\n").new_text == "Yes."


@pytest.mark.parametrize(
    ("text", "new_text", "with_signature"),
    [
        # A signature and a tagline between inline answers: kept in place, quotes dropped.
        (
            "Preface.\n-- \nMaria\nBologna\n\n> [Q-17] How?\n\nLike this.\n\n"
            "Sent from my iPhone\n\nOn Mon, 1 Dec 2025 at 10:00, Ana <ana@x.hr> wrote:\n> old",
            "Preface.\n\nLike this.",
            "Preface.\n--\nMaria\nBologna\n\nLike this.\n\nSent from my iPhone",
        ),
        # Unquoted history under a header goes with the header, whatever stage.
        (
            "Answer.\n\nMaria\n" + "_" * 20 + "\nFrom: A <a@x.org>\nSent: Monday\nTo: B\n"
            "Subject: S\n\nOld mail.",
            "Answer.\n\nMaria",
            "Answer.\n\nMaria",
        ),
        # A body that quotes nothing (the short way in unquoted.py): all of it.
        (
            "My question.\n\nAna\n-- \nAna Horvat\n+385 1\n\nPoslato sa mog iPhone-a",
            "My question.\n\nAna",
            "My question.\n\nAna\n--\nAna Horvat\n+385 1\n\nPoslato sa mog iPhone-a",
        ),
    ],
)
def test_new_text_with_signature_keeps_what_the_replier_signed(
    text: str, new_text: str, with_signature: str
) -> None:
    parsed = parse_reply(text=text)
    assert parsed.new_text == new_text
    assert parsed.new_text_with_signature == with_signature


# Template, items, closings


def test_service_wording_is_recognised_even_when_rewrapped() -> None:
    assert is_template(
        [
            'Session VC3 "Are clusters an exportable model?": 3 questions.',
            "Write each answer below its question; questions you leave unanswered stay",
            "open.",
        ]
    )
    assert not is_template(["Which public funds support cluster internationalisation?"])


def test_numbered_items_map_to_the_order_given() -> None:
    preamble, items = split_items(
        "Hi,\n1. a\n2) b\nmore b\n3: c", ["Q-1", "Q-2", "Q-3"], Questions(())
    ) or ("", [])
    assert preamble == "Hi,"
    assert [(item.refs, item.text) for item in items] == [
        (("Q-1",), "a"),
        (("Q-2",), "b\nmore b"),
        (("Q-3",), "c"),
    ]


def test_referenced_items_win_over_numbers_and_may_name_two_questions() -> None:
    text = "Q-18: yes\n1. step\n2. step\nRe Q-17 - no\nQ-19 and Q-20: both"
    _, items = split_items(text, ["Q-17", "Q-18"], Questions(())) or ("", [])
    assert [item.refs for item in items] == [("Q-18",), ("Q-17",), ("Q-19", "Q-20")]
    assert items[0].text == "yes\n1. step\n2. step"


def test_a_numbered_list_needs_two_questions_and_a_run_from_one() -> None:
    assert split_items("1. a\n2. b", ["Q-1"], Questions(())) is None
    assert split_items("2. a\n3. b", ["Q-1", "Q-2", "Q-3"], Questions(())) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes.\n\nBest regards,\nMaria", "Yes."),
        ("Да.\n\nС уважением,\nМария", "Да."),
        ("Evet.\nSaygılarımla", "Evet."),
        ("Yes.\n\nMaria", "Yes."),
        ("Yes.\n\nProf. Maria Rossi\nUniversity of Bologna", "Yes."),
        ("Thanks to the EU, yes.", "Thanks to the EU, yes."),
        ("Yes.\n\nThanks for the question!\nMore.", "Yes.\n\nThanks for the question!\nMore."),
        ("Yes.\nThanks, John", "Yes."),
        (
            "Partly.\n\nProf. Maria Rossi\nDepartment of Economics\nTel. +39 051 123456\nm@x.it",
            "Partly.",
        ),
        ("Yes.\n\nSee:\nhttps://example.eu", "Yes.\n\nSee:\nhttps://example.eu"),
        ("Yes.\n\nthe rest of the answer", "Yes.\n\nthe rest of the answer"),
    ],
)
def test_strip_closing(text: str, expected: str) -> None:
    assert strip_closing(text) == expected


def test_split_greeting() -> None:
    assert split_greeting("Dear Ivan,\nyes.") == ("Dear Ivan,", "yes.")
    assert split_greeting("Здравейте,\n\nДа.") == ("Здравейте,", "Да.")
    assert split_greeting("Hi there is a fund.") == ("", "Hi there is a fund.")


def test_outlook_inline_comments_marked_with_a_name_are_answers() -> None:
    text = (
        "See inline.\n\nFrom: QA <qa@x.org>\nSent: Monday, 3 March 2025 10:15\nTo: M\n"
        "Subject: VC3\n\n[Q-17] Ivan Petrov (Russia):\nHow can a maker join a cluster?\n"
        "[Maria Rossi] As a partner member.\n\n[Q-18] Ana Horvat (Croatia):\nWhich funds?\n"
    )
    parsed = parse_reply(text=text)
    assert [(answer.ref, answer.answer) for answer in parsed.answers] == [
        ("Q-17", "As a partner member.")
    ]
    assert parsed.preamble == "See inline."


# Matching questions


def test_reference_spellings() -> None:
    assert canonical_ref("q‑017 ") == "Q-17"
    assert list(Questions(QUESTIONS).refs_in("see [Q–18] and Q-19")) == ["Q-18", "Q-19"]


@pytest.mark.parametrize(
    ("quoted", "ref"),
    [
        ("Which public funds\nsupport cluster", "Q-18"),
        ("WHICH PUBLIC FUNDS SUPPORT CLUSTER INTERNATIONALISATION", "Q-18"),
        ("is the italian district model transferable to turkey", "Q-19"),
        ("Reply to this mail and write your answer below the question.", None),
        ("cluster", None),
    ],
)
def test_quote_matched_to_question_by_words(quoted: str, ref: str | None) -> None:
    assert Questions(QUESTIONS).match(quoted) == ref


def test_matching_ignores_diacritics_and_case_in_any_script() -> None:
    questions = Questions([QuestionRef("Q-1", "Može li mali proizvođač ući u klaster?")])
    assert questions.match("MOZE LI MALI PROIZVOĐAC") == "Q-1"
    cyrillic = Questions([QuestionRef("Q-2", "Може ли мали произвођач ући у кластер?")])
    assert cyrillic.match("може ли мали ПРОИЗВОЂАЧ") == "Q-2"


# HTML structure


def test_html_attribution_and_divider_become_header_marks() -> None:
    html = (
        '<div>Yes.</div><div class="gmail_quote"><div class="gmail_attr">On Mon X wrote:</div>'
        '<blockquote class="gmail_quote">Q</blockquote></div>'
        '<div id="divRplyFwdMsg"><b>From:</b> X</div><div>old</div>'
    )
    lines = html_to_marked_text(html).split("\n")
    assert lines.count(HEADER_MARK) == 2
    assert "> Q" in lines


def test_gmail_indent_blockquote_is_not_a_quote() -> None:
    html = (
        '<div>a</div><blockquote style="margin:0 0 0 40px;border:none;padding:0px">b</blockquote>'
    )
    assert parse_reply(html=html).new_text == "a\n\nb"


def test_plain_body_is_used_when_html_has_no_text() -> None:
    assert parse_reply(text="Yes.", html="<html><body>   </body></html>").new_text == "Yes."


# Robustness

# Long lines built to make a careless pattern backtrack; each is repeated over many lines.
HOSTILE_LINES = (
    "-" * 999 + "x",
    "_" * 999,
    "--" + " a" * 490 + " --",
    "On " + "1 " * 498,
    "On 1.2.2016 " + "wrote " * 160 + ":",
    "a@b.c " * 160 + ":",
    "From: " + "Sent: " * 160,
    ">" * 500 + "<" * 499,
    "[Q-1] " * 160,
    "1. " * 300,
    " " * 990 + "From:",
    " " * 990 + "x:",
    "( " * 250 + "(" * 240 + " " * 200 + "x",
    "a" * 998 + "@",
    "Ana wrote " * 15 + ":",
    "12. 02. " * 124 + ":",
    "11:00 " * 166 + ":",
)


@pytest.mark.parametrize("line", HOSTILE_LINES, ids=lambda line: repr(line[:12]))
def test_hostile_long_lines_are_parsed(line: str) -> None:
    assert isinstance(parse_reply(text=(line + "\n") * 300).reply, str)


@pytest.mark.parametrize(
    ("text", "html"),
    [
        (None, None),
        ("", ""),
        ("\x00\x01\x02" * 1000, "<<<>>>" * 1000),
        (">" * 50_000, None),
        ("On " + "1 " * 100_000 + "wrote:", None),
        ("-" * 100_000 + "\n--\n" * 1000, None),
        (None, "<blockquote>" * 5_000 + "x"),
        (None, "<div>" * 100_000),
        (None, "<script>" * 40_000),
        (None, "<a " * 50_000),
        ("".join(chr(code) for code in range(0x20, 0x3000)), None),
    ],
)
def test_never_raises(text: str | None, html: str | None) -> None:
    parsed = parse_reply(text=text, html=html, questions=QUESTIONS)
    assert isinstance(parsed.reply, str)
