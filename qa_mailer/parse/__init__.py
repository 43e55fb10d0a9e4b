"""MIME to ParsedMail: headers, readable text in any charset, attachments, defects."""

from qa_mailer.parse.html import html_to_text
from qa_mailer.parse.mail import Attachment, ParsedMail, ParseError, parse_mail

__all__ = ["Attachment", "ParseError", "ParsedMail", "html_to_text", "parse_mail"]
