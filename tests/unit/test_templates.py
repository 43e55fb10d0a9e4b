"""Rendering a mail's template: what a template may use, and what it sets."""

from __future__ import annotations

from pathlib import Path

from qa_mailer.templates import Templates


def test_an_override_can_use_jinjas_globals_and_set_its_subject(tmp_path: Path) -> None:
    # The context is built once with the globals merged in (templates._globals_of); an
    # organiser's template may still use range, namespace and the other globals of Jinja2.
    (tmp_path / "ack.txt").write_text(
        "{% set subject %}Ref {{ ref }}{% endset %}"
        "{% set seen = namespace(count=0) %}"
        "{% for n in range(3) %}{% set seen.count = seen.count + n %}{% endfor %}"
        "{{ seen.count }} {{ ref }} {{ language }}\n",
        encoding="utf-8",
    )
    templates = Templates(tmp_path)
    first = templates.render_mail("ack.txt", "en", ref="Q-7")
    again = templates.render_mail("ack.txt", "en", ref="Q-8")
    assert (first.subject, first.text) == ("Ref Q-7", "3 Q-7 en\n")
    # Nothing of one mail's context stays for the next.
    assert (again.subject, again.text) == ("Ref Q-8", "3 Q-8 en\n")
