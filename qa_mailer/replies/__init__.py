"""Reply understanding: trim quoted history off a reply and split it into answers.

``parse_reply`` takes the plain and HTML bodies of an expert's reply (either may be None) and
the questions that were sent, and returns the trimmed reply, the expert's own text, their
preamble, and one ``Answer`` per answered question. It also trims participants' questions
(use ``new_text``).

How a reply travels through the package:

- ``html_quotes``: HTML structure (Gmail, Outlook, Apple, Thunderbird, Yahoo markup) marks
  quote headers before the body becomes text (``qa_mailer.parse.html``);
- ``lines``: normalised lines with their quote depth;
- ``classify``: each line gets a kind, by the rules in ``headers`` and ``attributions``
  (quote headers in many languages, over the ``window`` of lines from a position) and
  ``signatures`` (signature delimiters, phone/app taglines), words in ``vocab``;
- ``trim``: the trimmed ``reply`` and ``new_text``;
- ``split``: answers, from ``units`` (quoted blocks cut into questions, matched by
  ``questions``), ``items`` (numbered or referenced lists), ``closings`` and ``template`` (the
  service's own wording); ``history`` re-reads Outlook's unquoted original for inline answers.

``leftovers`` is the last check on an answer before it is sent; ``preview`` shows what each
participant would receive, and ``files`` reads reply files and writes parses as JSON, for the
command line.
"""

from __future__ import annotations

from qa_mailer.replies.model import Answer, ParsedReply, QuestionRef
from qa_mailer.replies.parse import parse_reply, trimmed_reply

__all__ = ["Answer", "ParsedReply", "QuestionRef", "parse_reply", "trimmed_reply"]
