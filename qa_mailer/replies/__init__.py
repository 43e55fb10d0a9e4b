"""Reply understanding: trim quoted history off a reply and split it into answers.

``parse_reply`` takes the plain and HTML bodies of an expert's reply (either may be None) and
the questions that were sent, and returns the trimmed reply, the expert's own text, their
preamble, and one ``Answer`` per answered question.
"""

from __future__ import annotations

from qa_mailer.replies.model import Answer, ParsedReply, QuestionRef
from qa_mailer.replies.parse import parse_reply

__all__ = ["Answer", "ParsedReply", "QuestionRef", "parse_reply"]
