"""HTML mail bodies turned into readable plain text.

The text keeps what a reader needs: paragraphs and line breaks, list items, table cells on one
line, and quoted parts (``<blockquote>``) prefixed with ``> `` the way a plain-text client quotes,
so that the reply trimmer can treat HTML and plain mail alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html import unescape

import lxml.etree
import lxml.html

# Elements whose content is never shown to a reader.
_INVISIBLE = frozenset(
    {"head", "script", "style", "title", "meta", "link", "noscript", "template", "object", "svg"}
)
# Elements that start and end on their own line.
_BLOCKS = frozenset(
    {
        "div",
        "section",
        "article",
        "header",
        "footer",
        "nav",
        "aside",
        "main",
        "address",
        "center",
        "form",
        "fieldset",
        "figure",
        "figcaption",
        "dt",
        "dd",
        "tr",
        "li",
        "body",
        "html",
        "caption",
        "details",
        "summary",
    }
)
# Elements that stand apart from their neighbours with a blank line.
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "blockquote"}
)

# Outlook's plain-text reply divider; HTML <hr> becomes the same line so that one text rule
# recognises both.
RULE_LINE = "_" * 32

_WHITESPACE = re.compile(r"[ \t\r\n\f\v\xa0\u200b]+")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
# A tag ends at ">", or at the next "<" when a broken one never closes; either way the scan
# stays linear on hostile input.
_TAG = re.compile(r"<[^<>]*>")
_INVISIBLE_OPEN = re.compile(r"<(script|style|head)\b")
# Three or more line ends; a literal start lets the regex engine skip to them at C speed.
_BLANK_RUNS = re.compile(r"\n\n\n+")


@dataclass(frozen=True)
class _Break:
    """A request for at least ``lines`` line ends before the next text."""

    lines: int


@dataclass(frozen=True)
class _Raw:
    """Text placed as it is, already laid out in lines (quoted or preformatted parts)."""

    text: str


_LINE = _Break(1)
_PARAGRAPH = _Break(2)
_Token = str | _Break | _Raw


def parse_html(html: str) -> lxml.html.HtmlElement | None:
    """Parse an HTML body leniently; return None when there is no document at all."""
    html = _XML_DECLARATION.sub("", html)
    if not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return None


def html_to_text(html: str) -> str:
    """Return the readable text of an HTML body, with blockquotes as ``> `` lines."""
    root = parse_html(html)
    text = "" if root is None else element_to_text(root)
    if not text:
        # libxml2 gives up on some hostile documents (nesting thousands deep); the words
        # between the tags are still the message.
        text = _tidy(
            _WHITESPACE.sub(" ", unescape(_TAG.sub(" ", _drop_invisible_blocks(html))))
        ).strip()
    return text


def _drop_invisible_blocks(html: str) -> str:
    # Script, style and head blocks, cut with string searches: a lazy regex for them retries
    # from every unclosed "<script" and goes quadratic on hostile input.
    lowered = html.lower()
    kept: list[str] = []
    position = 0
    unclosed: set[str] = set()
    search_from = 0
    while True:
        opening = _INVISIBLE_OPEN.search(lowered, search_from)
        if opening is None:
            break
        name = opening.group(1)
        closing = -1 if name in unclosed else lowered.find(f"</{name}", opening.end())
        end = lowered.find(">", closing) if closing != -1 else -1
        if end == -1:
            # No closing tag further on: leave this one to the tag pass, stop looking for it.
            unclosed.add(name)
            search_from = opening.end()
            continue
        kept.append(html[position : opening.start()])
        kept.append(" ")
        position = search_from = end + 1
    kept.append(html[position:])
    return "".join(kept)


def element_to_text(element: lxml.html.HtmlElement) -> str:
    """Return the readable text of an already parsed element and everything inside it."""
    tokens: list[_Token] = []
    try:
        _render(element, tokens, preformatted=False)
        text = _join(tokens)
    except RecursionError:
        # Hostile nesting deeper than Python's stack: the words still matter more than layout.
        text = _WHITESPACE.sub(" ", element.text_content())
    return _tidy(text)


# The renderer appends tokens to one list. (Nested generators, one per element level, passed
# every token up through each level: most of the rendering time on ordinary mail.)


def _render(element: lxml.html.HtmlElement, out: list[_Token], *, preformatted: bool) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    tag = tag.lower()
    if tag in _INVISIBLE or not tag:
        # Comments and processing instructions have a non-string tag; their tail still shows.
        _text(element.tail, out, preformatted)
        return
    if tag == "br":
        out.append("\n")
    elif tag == "hr":
        out.extend((_LINE, _Raw(RULE_LINE), _LINE))
    elif tag == "blockquote" and not _is_indentation(element):
        inside: list[_Token] = []
        _children(element, inside, preformatted)
        inner = _tidy(_join(inside))
        if inner:
            quoted = "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
            out.extend((_PARAGRAPH, _Raw(quoted), _PARAGRAPH))
    elif tag == "pre":
        inner = element.text_content()
        out.extend((_PARAGRAPH, _Raw(inner.strip("\n")), _PARAGRAPH))
    elif tag == "img":
        pass
    else:
        _container(element, tag, out, preformatted)
    _text(element.tail, out, preformatted)


def _is_indentation(blockquote: lxml.html.HtmlElement) -> bool:
    # Gmail's "indent" button wraps text in a borderless blockquote; a quotation is marked
    # as one (type="cite", a *quote class) or drawn with a left border.
    if (blockquote.get("type") or "").lower() == "cite":
        return False
    if "quote" in (blockquote.get("class") or "").lower():
        return False
    style = (blockquote.get("style") or "").lower().replace(" ", "")
    return "border:none" in style and "border-left" not in style


def _container(
    element: lxml.html.HtmlElement, tag: str, out: list[_Token], preformatted: bool
) -> None:
    edge = _PARAGRAPH if tag in _PARAGRAPHS else _LINE if tag in _BLOCKS else None
    if edge is not None:
        out.append(edge)
    if tag == "li":
        out.append(_list_marker(element))
    _children(element, out, preformatted)
    if tag in {"td", "th"}:
        out.append(" ")
    if tag == "a":
        out.extend(_link_target(element))
    if edge is not None:
        out.append(edge)


def _children(element: lxml.html.HtmlElement, out: list[_Token], preformatted: bool) -> None:
    _text(element.text, out, preformatted)
    for child in element:
        _render(child, out, preformatted=preformatted)


def _text(text: str | None, out: list[_Token], preformatted: bool) -> None:
    if text:
        out.append(text if preformatted or _single_spaced(text) else _WHITESPACE.sub(" ", text))


def _single_spaced(text: str) -> bool:
    # True when _WHITESPACE.sub would change nothing: its only printable character is the
    # space, so a printable text without two spaces in a row has no run to shorten. Most
    # text nodes are such, and two C calls cost less than the substitution.
    return text.isprintable() and "  " not in text


def _list_marker(item: lxml.html.HtmlElement) -> str:
    parent = item.getparent()
    if parent is not None and str(parent.tag).lower() == "ol":
        position = [child for child in parent if child.tag == "li"].index(item) + 1
        return f"{position}. "
    return "- "


def _link_target(anchor: lxml.html.HtmlElement) -> Iterator[str]:
    # Show where a link goes when its words do not already say it, so an answer that links
    # "the report" keeps the address in plain text.
    href = (anchor.get("href") or "").strip()
    words = anchor.text_content().strip()
    if (
        href.startswith(("http://", "https://"))
        and words
        and href not in words
        and words not in href
    ):
        yield f" <{href}>"


def _join(tokens: Iterable[_Token]) -> str:
    out: list[str] = []
    trailing_newlines = 0  # line ends at the end of ``out``
    pending = 0  # line ends requested before the next text
    for token in tokens:
        if isinstance(token, _Break):
            pending = max(pending, token.lines)
            continue
        text = token.text if isinstance(token, _Raw) else token
        if not out:
            pending = 0
        elif pending > trailing_newlines:
            out.append("\n" * (pending - trailing_newlines))
            trailing_newlines = pending
        pending = 0
        if (trailing_newlines or not out) and not isinstance(token, _Raw):
            text = text.lstrip(" ")
        if not text:
            continue
        out.append(text)
        stripped = text.rstrip("\n")
        newlines = len(text) - len(stripped)
        trailing_newlines = trailing_newlines + newlines if not stripped else newlines
    return "".join(out)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip("\n")
