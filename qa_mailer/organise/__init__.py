"""What organisers do to sort the questions: list, show, move, close, apply roster changes.

The CLI (cli_questions.py) only prints what these functions return; a page for organisers
would call the same functions.
"""
