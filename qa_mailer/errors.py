"""Errors the commands turn into one-line messages, apart from the code that raises them.

The command line catches these around every command; defined here, catching them loads
nothing else (templates.py would bring Jinja2, admin.py most of the service).
"""

from __future__ import annotations


class TemplateProblem(Exception):
    """A template cannot be rendered: the message names the file and the line."""


class NotFound(Exception):
    """No such quarantined message, held answer or held message."""
