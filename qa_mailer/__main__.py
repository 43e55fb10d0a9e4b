"""`python -m qa_mailer` is the `qa-mailer` command."""

from qa_mailer.cli import main

# Parsing helpers (offload.py) start from a fresh interpreter that may import this module
# again; only the command itself runs the command.
if __name__ == "__main__":
    main()
