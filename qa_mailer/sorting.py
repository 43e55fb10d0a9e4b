"""Parsing and sorting one claimed message: everything the processing stage does without the
database, so it can run in a parsing helper process (see offload.py).

A message is parsed, then sorted: machine-made mail is set aside, a reply to one of our
mails goes to the answer desk, mail from an expert that replies to nothing is held, and
anything else is a participant's question, whose text is trimmed here.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from qa_mailer.answer.tokens import ReplyKeys, notice_tokens, replies_to_notice, reply_keys
from qa_mailer.classify.bounces import BounceReport, may_be_bounce, read_bounce
from qa_mailer.classify.incoming import Incoming
from qa_mailer.classify.language import LanguageClues, clues_for
from qa_mailer.classify.language import warm_up as warm_up_language_detector
from qa_mailer.classify.rules import automatic_reason
from qa_mailer.config import Config
from qa_mailer.db import MessageKind, MessageState
from qa_mailer.db.claims import MAX_MESSAGE_ATTEMPTS, ClaimedMessage
from qa_mailer.parse import ParsedMail, parse_mail
from qa_mailer.replies.template import learn as learn_wording
from qa_mailer.route.questions import language_text, question_text
from qa_mailer.send.verp import verp_tag
from qa_mailer.templates import Templates
from qa_mailer.wording import wording_patterns

log = logging.getLogger("qa_mailer.pipeline")


@dataclass(frozen=True)
class Outcome:
    message_id: int
    state: str
    kind: str | None
    reason: str | None


@dataclass
class Sorted:
    """A claimed message, parsed and sorted, with what becomes of it once it is written."""

    claimed: ClaimedMessage
    # A question's mail, back from a parsing helper, has no body parts: read ``text``.
    mail: ParsedMail | None = None
    incoming: Incoming | None = None
    state: str = MessageState.PROCESSED
    kind: str | None = None
    reason: str | None = None
    details: str | None = None  # the traceback of a failure
    keys: ReplyKeys = field(default_factory=ReplyKeys)  # what a reply brings back of ours
    text: str = ""  # a question's trimmed text
    language_clues: LanguageClues | None = None  # the detector's work on the question
    bounce: BounceReport | None = None  # what a bounce says failed
    notice_tokens: tuple[str, ...] = ()  # an organiser's reply to a notice brings these back

    def fail(self, reason: str, details: str) -> None:
        self.state, self.reason, self.details = MessageState.QUARANTINED, reason, details

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.claimed.id, self.state, self.kind, self.reason)


def sort_messages(config: Config, claimed: Sequence[ClaimedMessage]) -> list[Sorted]:
    """Parse and classify messages: everything that needs no database, a stage at a time.

    Every mail is parsed, then each is classified (a question's text trimmed), then the
    questions' languages are read. The outcomes are those of one message at a time, and a
    failure is one message's: this reads nothing but its arguments and never raises. It runs
    in the parsing helpers (see offload.py), or in the service's own process when there are
    none, on chunks of 25.

    A stage at a time is less work than one message through every stage: each stage's code
    and tables stay in the processor's caches through the whole chunk, the language
    detector's above all (39 MB, read at random). On the questions of
    bench/bench_process.py, 25 at a time: 570-585 µs per question one message at a time,
    490-515 µs this way.
    """
    messages = [_unsorted(message) for message in claimed]
    for stage in (_parse, functools.partial(_classify, config), _read_language):
        for message in messages:
            if message.state == MessageState.QUARANTINED:
                continue
            try:
                stage(message)
            except Exception as exc:
                message.fail(f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return messages


def _unsorted(claimed: ClaimedMessage) -> Sorted:
    message = Sorted(claimed)
    if claimed.attempts > MAX_MESSAGE_ATTEMPTS:
        message.fail(
            f"processing did not finish in {MAX_MESSAGE_ATTEMPTS} attempts "
            "(the process handling it stopped or died each time)",
            "",
        )
    return message


def _parse(message: Sorted) -> None:
    message.mail = mail = parse_mail(message.claimed.raw)
    message.incoming = incoming_of(message.claimed, mail)


def _classify(config: Config, message: Sorted) -> None:
    incoming = message.incoming
    assert incoming is not None, "classified before it was parsed"
    automatic = automatic_reason(incoming, config.address)
    if automatic is not None:
        message.state, message.kind = MessageState.IGNORED, MessageKind.AUTOMATIC
        message.reason = automatic
        message.bounce = bounce = _bounce_of(incoming, message.claimed.raw, config)
        if bounce is not None:
            message.reason = f"bounce: {bounce.describe()}; {automatic}"
    elif tokens := notice_tokens(incoming, config):
        message.kind, message.notice_tokens = MessageKind.COMMAND, tokens
    elif replies_to_notice(incoming, config):
        # A reply to a notice whose client dropped the token's address proves nothing.
        message.state, message.kind = MessageState.HELD, MessageKind.COMMAND
        message.reason = (
            "organiser command: a reply to a notice without the notice's token "
            "(sent to the plain address); nothing done"
        )
    elif keys := reply_keys(incoming, config):
        message.kind, message.keys = MessageKind.REPLY, keys
    elif incoming.sender in config.experts:
        message.state, message.kind = MessageState.HELD, MessageKind.EXPERT
        message.reason = "mail from an expert that replies to no question mail"
    else:
        message.kind, message.text = MessageKind.QUESTION, question_text(incoming)


def _read_language(message: Sorted) -> None:
    # The detector's costly part, here rather than in the database's process.
    if message.kind == MessageKind.QUESTION and message.incoming is not None:
        message.language_clues = clues_for(language_text(message.incoming, message.text))


def _bounce_of(incoming: Incoming, raw: bytes, config: Config) -> BounceReport | None:
    """The bounce this automatic mail is, if any; a detector's failure is no bounce.

    Sent to a VERP address of ours, it names the mail it returns; the signature is checked
    when it is recorded (the key is in the database).
    """
    if not may_be_bounce(incoming):
        return None
    try:
        report = read_bounce(raw)
        tag = verp_tag(incoming, config.address)
        return replace(report, verp=tag) if report is not None and tag is not None else report
    except Exception:
        log.warning("%s: cannot read it as a bounce", incoming.mail.message_id, exc_info=True)
        return None


# In a parsing helper process: the configuration it sorts with (set when it starts).
_helper_config: Config | None = None


def use_config(config: Config) -> None:
    """In a new parsing helper: keep the configuration that sort_in_helper sorts with."""
    global _helper_config
    _helper_config = config
    learn_wording(wording_patterns(config, Templates.of(config)))
    # The language detector's model, loaded before the first question rather than by it.
    warm_up_language_detector()


def sort_in_helper(claimed: Sequence[ClaimedMessage]) -> list[Sorted]:
    """sort_messages for a parsing helper, sending back only what the writing reads.

    What a helper returns is pickled, sent through a pipe and unpickled in the service, in
    its executor's thread, which takes the service's lock (the GIL) to do so; the cost is
    per object more than per byte. So:
    - the claimed message is not sent back: the caller has it, and puts it back;
    - a question comes back without its mail's body parts (``text_plain``, ``html``) and
      without the mail's cache of headers by name: its trimmed ``text`` is all the writing
      reads of its body.
    On bench/bench_process.py's questions a question crosses as 5.9 KB instead of 10.2, and
    the executor's thread took 0.07-0.12 instead of 0.17-0.25 ms of CPU per question (on a
    slow day). Replies, commands and everything else come back whole: their desks read the
    body.
    """
    assert _helper_config is not None, "a parsing helper starts with use_config"
    sorted_ = sort_messages(_helper_config, claimed)
    for message in sorted_:
        message.claimed = _PUT_BACK_BY_CALLER
        if message.kind == MessageKind.QUESTION and message.incoming is not None:
            message.mail = replace(message.incoming.mail, text_plain=None, html=None)
            message.incoming = replace(message.incoming, mail=message.mail)
    return sorted_


# Stands for the claimed message in what a helper sends back (see sort_in_helper).
_PUT_BACK_BY_CALLER = ClaimedMessage(0, 0, b"", "", None, None, datetime.min, None)


def incoming_of(message: ClaimedMessage, mail: ParsedMail) -> Incoming:
    """The classification view of a stored message."""
    return Incoming(
        mail=mail,
        source=message.source,
        envelope_from=message.envelope_from,
        envelope_to=tuple(r for r in (message.envelope_to or "").split(",") if r),
        received_at=message.received_at,
    )
