"""`python -m qa_mailer` is the `qa-mailer` command."""

from qa_mailer.cli import main

main()
