"""Read quote structure out of an HTML reply before it becomes text.

Blockquotes already become ``> `` lines (``qa_mailer.parse.html``). What text alone cannot
show is where a client's attribution or reply divider sits: Gmail's ``div.gmail_attr``,
Thunderbird's ``div.moz-cite-prefix``, Outlook's ``div#divRplyFwdMsg``, ``div#appendonsend``
and bordered header ``div``, Hotmail's ``hr#stopSpelling``, Zimbra's ``hr#zwchr``, Yahoo's
quoted ``div``. Each is replaced by a line holding ``HEADER_MARK`` only, which the
``html-mark`` header rule recognises, so one text pipeline serves plain and HTML mail.
"""

from __future__ import annotations

import re

import lxml.html

from qa_mailer.parse.html import element_to_text, html_to_text, parse_html
from qa_mailer.replies.headers import field_category
from qa_mailer.replies.lines import HEADER_MARK

# Element ids and classes that clients give the line or block above quoted mail.
_ATTRIBUTION_CLASSES = frozenset({"gmail_attr", "moz-cite-prefix", "yahoo_quoted_attr"})
_DIVIDER_IDS = frozenset({"divrplyfwdmsg", "appendonsend", "stopspelling", "zwchr"})
_HISTORY_PREFIXES = ("yahoo_quoted", "olk_src_body_section", "mail-editor-reference-message")
_BORDER_TOP = re.compile(r"border-top\s*:\s*solid|border-top-style\s*:\s*solid", re.IGNORECASE)


def html_to_marked_text(html: str) -> str:
    """Render an HTML reply as text, with client quote headers replaced by ``HEADER_MARK``."""
    html = html.replace(HEADER_MARK, "")
    root = parse_html(html)
    if root is None:
        return html_to_text(html)
    try:
        _mark(root)
    except (RecursionError, ValueError, TypeError):
        # The structure pass only adds precision; the text rules still work without it.
        root = parse_html(html)
        if root is None:
            return html_to_text(html)
    text = element_to_text(root)
    return text if text.strip() else html_to_text(html)


def _mark(root: lxml.html.HtmlElement) -> None:
    found: list[lxml.html.HtmlElement] = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if not (element.get("class") or element.get("id") or element.get("style")):
            # Every mark below is a class, an id or a style, and most elements carry none.
            continue
        if _is_attribution(element) or _is_divider(element) or _is_bordered_header(element):
            found.append(element)
        elif _starts_history(element):
            element.addprevious(_mark_element())
    for element in found:
        _replace_with_mark(element)


def _classes(element: lxml.html.HtmlElement) -> set[str]:
    return set((element.get("class") or "").casefold().split())


def _is_attribution(element: lxml.html.HtmlElement) -> bool:
    return bool(_classes(element) & _ATTRIBUTION_CLASSES)


def _is_divider(element: lxml.html.HtmlElement) -> bool:
    return (element.get("id") or "").casefold() in _DIVIDER_IDS


def _starts_history(element: lxml.html.HtmlElement) -> bool:
    ident = (element.get("id") or "").casefold()
    names = _classes(element) | {ident}
    return any(name.startswith(_HISTORY_PREFIXES) for name in names if name)


def _is_bordered_header(element: lxml.html.HtmlElement) -> bool:
    # Outlook draws a thin rule above the From/Sent/To/Subject block of the message replied to;
    # the colour differs by version, the field block under the rule does not.
    if element.tag != "div" or not _BORDER_TOP.search(element.get("style") or ""):
        return False
    text = element.text_content()[:300].strip()
    return field_category(text) is not None


def _mark_element() -> lxml.html.HtmlElement:
    mark = lxml.html.Element("div")
    mark.text = HEADER_MARK
    return mark


def _replace_with_mark(element: lxml.html.HtmlElement) -> None:
    if element.getparent() is None:
        return
    tail = element.tail
    element.clear()
    element.tag = "div"
    element.text = HEADER_MARK
    element.tail = tail
