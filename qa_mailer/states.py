"""The states a question and an outgoing mail go through, as plain enums.

They live apart from the models (db/question.py, db/outbox.py re-export them) so that the
command line can offer them as choices, in `--help` and in shell completion, without loading
SQLAlchemy and every model first.
"""

from __future__ import annotations

from enum import StrEnum


class QuestionState(StrEnum):
    NEW = "new"  # stored; the mail to the expert is not delivered yet
    WITH_EXPERT = "with_expert"  # delivered to the expert, waiting for an answer
    ANSWERED = "answered"  # at least one answer published to the participant
    CLOSED = "closed"  # an organiser closed it: no answer needed (a "thank you")
    MERGED = "merged"  # an organiser merged it into another: that one's answer comes to it


# The states of a question the expert may still answer.
OPEN_QUESTION_STATES = (QuestionState.NEW, QuestionState.WITH_EXPERT)


class OutboxState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a worker (claimed_by) until lease_until
    SENT = "sent"
    FAILED = "failed"  # gave up after max_attempts or a permanent refusal
