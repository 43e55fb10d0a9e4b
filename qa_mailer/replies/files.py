"""Reading a reply from a file for `qa-mailer parse-reply`: an .eml, a .txt or an .html body."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qa_mailer.parse import parse_mail
from qa_mailer.replies import ParsedReply


def load_reply_file(path: Path) -> tuple[str | None, str | None]:
    """(text, html) of the reply in ``path``."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix in {".html", ".htm"}:
        return None, data.decode("utf-8", "replace")
    if suffix == ".eml":
        mail = parse_mail(data)
        return mail.text_plain, mail.html
    return data.decode("utf-8", "replace"), None


def parsed_reply_to_json(parsed: ParsedReply) -> dict[str, Any]:
    return {
        "reply": parsed.reply,
        "new_text": parsed.new_text,
        "preamble": parsed.preamble,
        "answers": [{"quoted": a.quoted, "ref": a.ref, "answer": a.answer} for a in parsed.answers],
    }
