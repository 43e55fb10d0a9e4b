"""The database: one model per module, the engine and session factory, and migrations."""

from qa_mailer.db.answer import Answer, AnswerState
from qa_mailer.db.base import Base
from qa_mailer.db.bounce import Bounce
from qa_mailer.db.digest_run import DigestRun
from qa_mailer.db.dispatch import Dispatch, NewDispatch, dispatch_questions
from qa_mailer.db.imap_cursor import ImapCursor
from qa_mailer.db.message import (
    InboundMessage,
    MessageKind,
    MessageSource,
    MessageState,
    RawMessage,
)
from qa_mailer.db.notice_token import NoticeToken
from qa_mailer.db.outbox import OutboxKind, OutboxMail, OutboxState, RecipientOutcome
from qa_mailer.db.question import NewQuestion, Question, QuestionState
from qa_mailer.db.service_key import ServiceKey
from qa_mailer.db.thread import NewThread, Thread
from qa_mailer.db.unknown_token import UnknownTokenReply
from qa_mailer.db.worker import Lease, Role, Worker

__all__ = [
    "Answer",
    "AnswerState",
    "Base",
    "Bounce",
    "DigestRun",
    "Dispatch",
    "ImapCursor",
    "InboundMessage",
    "Lease",
    "MessageKind",
    "MessageSource",
    "MessageState",
    "NewDispatch",
    "NewQuestion",
    "NewThread",
    "NoticeToken",
    "OutboxKind",
    "OutboxMail",
    "OutboxState",
    "Question",
    "QuestionState",
    "RawMessage",
    "RecipientOutcome",
    "Role",
    "ServiceKey",
    "Thread",
    "UnknownTokenReply",
    "Worker",
    "dispatch_questions",
]
