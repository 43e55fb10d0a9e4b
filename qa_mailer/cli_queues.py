"""Commands for the organisers' queues (quarantine, held replies) and the reply parser."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from qa_mailer.errors import NotFound

# The service is imported inside each command, so that `--help` loads click alone (see cli.py).
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from qa_mailer.admin import MessageSummary, UnknownTokenSender
    from qa_mailer.config import Config
    from qa_mailer.db import Answer

T = TypeVar("T")


def _ids(values: tuple[str, ...], prefix: str) -> list[int]:
    ids = []
    for value in values:
        match = re.fullmatch(rf"(?:{prefix}-?)?(\d+)", value.strip(), re.IGNORECASE)
        if match is None:
            raise click.BadParameter(f"{value!r} is not a number like 12 or {prefix}-12")
        ids.append(int(match.group(1)))
    return ids


def _run(ctx: click.Context, work: Callable[[AsyncEngine, Config], Awaitable[T]]) -> T:
    from qa_mailer.cli import Context, _config, run

    context = ctx.find_object(Context)
    assert context is not None
    config = _config(context)
    try:
        return run(lambda engine: work(engine, config), config)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def quarantine() -> None:
    """Messages that could not be processed: list, show, release for another try."""


@quarantine.command("list")
@click.pass_context
def quarantine_list(ctx: click.Context) -> None:
    """List quarantined messages with their reasons."""
    from qa_mailer import admin
    from qa_mailer.db import MessageState

    rows = _run(ctx, lambda engine, config: admin.list_messages(engine, MessageState.QUARANTINED))
    for row in rows:
        click.echo(
            f"{row.id:>6}  {row.received_at:%Y-%m-%d %H:%M}  {row.sender[:30]:30}  {row.subject[:40]}"
        )
        click.echo(f"{'':8}{row.reason[:100]}")
    click.echo(f"{len(rows)} quarantined")


@quarantine.command("show")
@click.argument("message_id", type=int)
@click.option("--raw", is_flag=True, help="Print the message exactly as it arrived.")
@click.pass_context
def quarantine_show(ctx: click.Context, message_id: int, raw: bool) -> None:
    """Show one message: where it came from, why it is parked, and the traceback."""
    from qa_mailer import admin

    message = _run(ctx, lambda engine, config: admin.show_message(engine, message_id))
    if raw:
        click.echo(message.raw_mail.raw.decode("utf-8", "replace"), nl=False)
        return
    click.echo(
        f"message {message.id} ({message.state}), received {message.received_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    click.echo(
        f"via {message.source}; Message-ID {message.rfc_message_id}; from {message.sender or message.envelope_from}"
    )
    click.echo(f"subject: {message.subject}")
    click.echo(f"reason: {message.reason}")
    if message.traceback:
        click.echo(message.traceback)


@quarantine.command("release")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "release_all", is_flag=True, help="Release every quarantined message.")
@click.pass_context
def quarantine_release(ctx: click.Context, message_ids: tuple[str, ...], release_all: bool) -> None:
    """Put messages back to be processed again (by `serve`, within 30 s)."""
    from qa_mailer import admin
    from qa_mailer.db import MessageState

    if not message_ids and not release_all:
        raise click.UsageError("name the messages to release, or use --all")
    ids = None if release_all else _ids(message_ids, "M")
    released = _run(
        ctx, lambda engine, config: admin.release_messages(engine, ids, MessageState.QUARANTINED)
    )
    click.echo(f"released {len(released)} message(s): {', '.join(map(str, released))}")


@click.group()
def held() -> None:
    """Replies held for an organiser because they could not be proven to be the expert's."""


@held.command("list")
@click.pass_context
def held_list(ctx: click.Context) -> None:
    """List held answers (A-n) and held messages with no answer in them (M-n)."""
    from qa_mailer import admin
    from qa_mailer.db import MessageState

    async def work(
        engine: AsyncEngine, config: Config
    ) -> tuple[list[Answer], list[MessageSummary], list[UnknownTokenSender]]:
        return (
            await admin.held_answers(engine),
            await admin.list_messages(engine, MessageState.HELD),
            await admin.unknown_token_senders(engine),
        )

    answers, messages, guessers = _run(ctx, work)
    answered_messages = {a.message_id for a in answers}
    for answer in answers:
        excerpt = " ".join(answer.body.split())[:60]
        click.echo(
            f"A-{answer.id:<5} {answer.question.ref:>7}  from {answer.expert_address}: {answer.reason}"
        )
        click.echo(f"{'':8}{excerpt}")
    # Replies with unknown tokens are listed per sender: a sender guessing tokens would
    # otherwise bury everything else under hundreds of lines.
    guessers = [guesser for guesser in guessers if guesser.replies > 1]
    collapsed = {i for guesser in guessers for i in guesser.held}
    for message in messages:
        if message.id not in answered_messages and message.id not in collapsed:
            click.echo(f"M-{message.id:<5} from {message.sender}: {message.reason}")
    for guesser in guessers:
        ignored = guesser.replies - len(guesser.held)
        click.echo(
            f"sender {guesser.sender or '(no address)'}: {guesser.replies} replies with unknown "
            f"tokens, {guesser.first:%Y-%m-%d %H:%M} to {guesser.last:%H:%M} UTC "
            f"({len(guesser.held)} held: {_id_range(guesser.held)}"
            + (f"; {ignored} more ignored over the limit)" if ignored else ")")
        )
    click.echo(
        "approve A-n publishes an answer; reject A-n drops it; release M-n processes a message again"
    )


@held.command("show")
@click.argument("answer_id")
@click.pass_context
def held_show(ctx: click.Context, answer_id: str) -> None:
    """Show a held answer whole, with the question it answers and why it is held.

    \b
    Example:
      qa-mailer held show A-12
    """
    from qa_mailer.organise.queues import held_answer

    number = _ids((answer_id,), "A")[0]
    shown = _run(ctx, lambda engine, config: held_answer(engine, number))
    answer, question, thread = shown.answer, shown.question, shown.thread
    click.echo(f"A-{answer.id} for {question.ref}, from {answer.expert_address}")
    click.echo(f"held: {answer.reason}")
    click.echo(
        f"received {answer.created_at:%Y-%m-%d %H:%M} UTC, reply message M-{answer.message_id}"
    )
    click.echo("")
    click.echo(f"{question.ref} from {thread.participant_name} <{thread.participant_email}>:")
    click.echo("    " + "\n    ".join(question.body.splitlines()))
    click.echo("")
    click.echo(answer.body)
    click.echo("")
    click.echo(f"approve A-{answer.id} publishes it; reject A-{answer.id} drops it")


@held.command("approve")
@click.argument("answer_ids", nargs=-1, required=True)
@click.pass_context
def held_approve(ctx: click.Context, answer_ids: tuple[str, ...]) -> None:
    """Publish held answers to their participants."""
    answers, report = _decide(ctx, answer_ids, approve=True)
    for answer in answers:
        click.echo(f"A-{answer.id} published to {answer.question.ref}")
    if report:
        click.echo(f"mail to the participants: {report}")


@held.command("reject")
@click.argument("answer_ids", nargs=-1, required=True)
@click.pass_context
def held_reject(ctx: click.Context, answer_ids: tuple[str, ...]) -> None:
    """Drop held answers; their questions stay open."""
    answers, _ = _decide(ctx, answer_ids, approve=False)
    for answer in answers:
        click.echo(f"A-{answer.id} rejected")


def _decide(
    ctx: click.Context, answer_ids: tuple[str, ...], *, approve: bool
) -> tuple[list[Answer], str | None]:
    from qa_mailer import admin

    ids = _ids(answer_ids, "A")
    return _run(
        ctx, lambda engine, config: admin.decide_answers(engine, config, ids, approve=approve)
    )


@held.command("release")
@click.argument("message_ids", nargs=-1, required=True)
@click.pass_context
def held_release(ctx: click.Context, message_ids: tuple[str, ...]) -> None:
    """Process held messages again (after adding an expert address to config.toml, say)."""
    from qa_mailer import admin
    from qa_mailer.db import MessageState

    ids = _ids(message_ids, "M")
    released = _run(
        ctx, lambda engine, config: admin.release_messages(engine, ids, MessageState.HELD)
    )
    click.echo(f"released {len(released)} message(s)")


@held.command("dismiss")
@click.argument("message_id")
@click.pass_context
def held_dismiss(ctx: click.Context, message_id: str) -> None:
    """Set a held message aside for good (it stays recorded)."""
    from qa_mailer import admin

    number = _ids((message_id,), "M")[0]
    _run(ctx, lambda engine, config: admin.dismiss_message(engine, number))
    click.echo(f"M-{number} dismissed")


@click.command("parse-reply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print reply, new_text, preamble and answers as JSON."
)
@click.option(
    "--questions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON list of {"ref": "Q-17", "text": "..."}: the questions that were sent.',
)
def parse_reply_command(file: Path, as_json: bool, questions: Path | None) -> None:
    """Show how an expert's reply (.eml, .txt or .html) is trimmed and what each participant gets."""
    from qa_mailer.replies import QuestionRef, parse_reply
    from qa_mailer.replies.files import load_questions, load_reply_file, parsed_reply_to_json
    from qa_mailer.replies.preview import preview_text

    refs: tuple[QuestionRef, ...] = ()
    if questions is not None:
        try:
            refs = load_questions(questions)
        except (ValueError, KeyError, TypeError) as exc:
            raise click.ClickException(f"{questions}: {exc}") from None
    text, html = load_reply_file(file)
    parsed = parse_reply(text=text, html=html, questions=refs)
    if as_json:
        click.echo(json.dumps(parsed_reply_to_json(parsed), ensure_ascii=False, indent=2))
    else:
        click.echo(preview_text(parsed, refs), nl=False)


def _id_range(ids: list[int]) -> str:
    """M-3 or M-3..M-7 (ids in order; gaps are other senders' messages)."""
    return f"M-{ids[0]}" if len(ids) == 1 else f"M-{ids[0]}..M-{ids[-1]}"
