"""Commands for sorting the questions (list, show, move, merge, close), roster changes, export."""

from __future__ import annotations

from pathlib import Path

import click

from qa_mailer.cli_queues import _ids, _run
from qa_mailer.states import QuestionState


def _one(value: str) -> int:
    return _ids((value,), "Q")[0]


@click.group()
def questions() -> None:
    """Sort the questions: list, show, move to another session or country, close.

    \b
    Example:
      qa-mailer questions list --session 2 --country unassigned
      qa-mailer questions move Q-17 --session 4 --country TR
    """


@questions.command("list")
@click.option("--session", type=int, help="Only this session (2 for VC2).")
@click.option("--country", help="Only this country code, or `unassigned`.")
@click.option(
    "--state",
    type=click.Choice([s.value for s in QuestionState]),
    help="Only questions in this state.",
)
@click.option("--participant", help="Part of the participant's address or name.")
@click.option("--search", "text", help="Part of the subject or the question, in any case.")
@click.pass_context
def questions_list(
    ctx: click.Context,
    session: int | None,
    country: str | None,
    state: str | None,
    participant: str | None,
    text: str | None,
) -> None:
    """List questions, oldest first, narrowed by the options given.

    \b
    Example:
      qa-mailer questions list --state with_expert --search klaster
    """
    from qa_mailer.organise import questions as organise

    where = organise.QuestionFilter(session, country, state, participant, text)
    rows = _run(ctx, lambda engine, config: organise.list_questions(engine, where))
    for row in rows:
        follow = f" (follow-up to Q-{row.follow_up_to})" if row.follow_up_to else ""
        click.echo(
            f"{row.ref:>7}  VC{row.session_no} {row.country or '--'}  {row.state:<11}  "
            f"{row.asked_at:%Y-%m-%d %H:%M}  {row.participant_email}  {row.subject[:50]}{follow}"
        )
    click.echo(f"{len(rows)} question(s)")


@questions.command("show")
@click.argument("question")
@click.pass_context
def questions_show(ctx: click.Context, question: str) -> None:
    """Show a question with its thread, its answers and every mail sent for it.

    \b
    Example:
      qa-mailer questions show Q-17
    """
    from qa_mailer.organise import questions as organise

    number = _one(question)
    detail = _run(ctx, lambda engine, config: organise.show_question(engine, number))
    q, thread = detail.question, detail.thread
    click.echo(f"{q.ref} ({q.state}{': ' + q.closed_reason if q.closed_reason else ''})")
    click.echo(
        f"from {thread.participant_name} <{thread.participant_email}>, VC{thread.session_no} "
        f"(by {thread.session_source}), country {thread.country or 'unassigned'} "
        f"(by {thread.country_source or 'no rule'}), language {thread.language}"
    )
    asked = f"asked {q.asked_at:%Y-%m-%d %H:%M} UTC"
    answered = f", answered {q.answered_at:%Y-%m-%d %H:%M} UTC" if q.answered_at else ""
    click.echo(asked + answered + (f", follow-up to Q-{q.follow_up_to}" if q.follow_up_to else ""))
    click.echo(f"subject: {q.subject}")
    click.echo("")
    click.echo(q.body)
    click.echo("")
    others = [other.ref for other in detail.thread_questions]
    click.echo(f"thread: {', '.join(others)}")
    for dispatch in detail.dispatches:
        click.echo(f"sent to the expert as D-{dispatch.id}: {dispatch.experts}")
    for answer in detail.answers:
        reason = f" ({answer.reason})" if answer.reason else ""
        click.echo(f"A-{answer.id} {answer.state}{reason}, from {answer.expert_address}:")
        click.echo("    " + "\n    ".join(answer.body.splitlines()))
    click.echo("mails:")
    for mail in detail.mails:
        when = (
            f"sent {mail.sent_at:%Y-%m-%d %H:%M}"
            if mail.sent_at
            else f"next attempt {mail.next_attempt_at:%Y-%m-%d %H:%M}"
        )
        error = f"; last error: {mail.last_error}" if mail.last_error else ""
        click.echo(
            f"  {mail.key:<16} {mail.state:<8} to {', '.join(mail.recipients)}; "
            f"{mail.attempts} attempt(s), {when}{error}"
        )


@questions.command("move")
@click.argument("question")
@click.option("--session", type=int, help="The session it belongs to (4 for VC4).")
@click.option("--country", help="The country code it belongs to, or `unassigned`.")
@click.pass_context
def questions_move(
    ctx: click.Context, question: str, session: int | None, country: str | None
) -> None:
    """Move a question, with the rest of its thread, to another session and/or country.

    Digests and lists count it where it is moved; nothing is sent again.

    \b
    Example:
      qa-mailer questions move Q-17 --session 4 --country TR
    """
    from qa_mailer.organise import questions as organise

    if session is None and country is None:
        raise click.UsageError("say where to: --session N and/or --country XX")
    number = _one(question)
    moved = _run(
        ctx,
        lambda engine, config: organise.move_question(
            engine, config, number, session=session, country=country
        ),
    )
    click.echo(
        f"{', '.join(moved.refs)} now in VC{moved.session_no}, "
        f"country {moved.country or 'unassigned'}"
    )
    if moved.with_experts:
        click.echo(f"already with the expert(s) {'; '.join(moved.with_experts)}: not sent again")


@questions.command("close")
@click.argument("question")
@click.option("--reason", required=True, help="Why it needs no answer (shown in the digest).")
@click.pass_context
def questions_close(ctx: click.Context, question: str, reason: str) -> None:
    """Close a question that needs no answer (a "thank you"); nothing is sent to anyone.

    \b
    Example:
      qa-mailer questions close Q-18 --reason "a thank-you, no question"
    """
    from qa_mailer.organise import questions as organise

    number = _one(question)
    closed = _run(ctx, lambda engine, config: organise.close_question(engine, number, reason))
    click.echo(f"{closed.ref} closed: {reason}")


@questions.command("merge")
@click.argument("words", nargs=-1, required=True, metavar="Q-b into Q-a")
@click.pass_context
def questions_merge(ctx: click.Context, words: tuple[str, ...]) -> None:
    """Merge a question asked again (or by someone else) into another: one answer reaches both.

    Each participant gets the answer in their own thread; a participant whose own resend is
    merged gets it once. In batch mode the expert gets Q-a only, saying who else asked it;
    if Q-a is already answered, its answer goes to Q-b's participant now.

    \b
    Example:
      qa-mailer questions merge Q-18 into Q-17
    """
    from qa_mailer.organise import questions as organise

    parts = [w for w in words if w.lower() != "into"]
    if len(parts) != 2:
        raise click.UsageError("say which question goes into which: merge Q-18 into Q-17")
    number, into = _one(parts[0]), _one(parts[1])
    merged = _run(
        ctx, lambda engine, config: organise.merge_questions(engine, config, number, into=into)
    )
    already = " (its answer is on the way)" if merged.state == QuestionState.ANSWERED else ""
    click.echo(f"{merged.ref} merged into Q-{merged.merged_into}{already}")


@click.group()
def roster() -> None:
    """The roster of participants (programme.roster)."""


@roster.command("reload")
@click.pass_context
def roster_reload(ctx: click.Context) -> None:
    """Read the roster again and sort unassigned participants it now names into their country.

    \b
    Example:
      qa-mailer roster reload
    """
    from qa_mailer.organise import questions as organise

    found = _run(ctx, lambda engine, config: organise.apply_roster(engine, config))
    for item in found:
        click.echo(f"{item.email}: {item.country} ({', '.join(item.refs)})")
    click.echo(f"{len(found)} unassigned participant(s) sorted")


@click.command("export")
@click.option(
    "--format",
    "form",
    type=click.Choice(["csv", "md", "html", "json"]),
    default="csv",
    show_default=True,
    help="csv opens in Excel with every letter right (UTF-8 with a byte-order mark).",
)
@click.option("--session", type=int, help="Only this session (default: every session).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (default: standard output).",
)
@click.pass_context
def export_command(ctx: click.Context, form: str, session: int | None, output: Path | None) -> None:
    """Export questions and answers for the report: asker, organisation, country, session,
    asked, answered, wait and answer.

    \b
    Example:
      qa-mailer export --format csv --session 2 --output vc2.csv
    """
    from qa_mailer.organise.export import export_questions

    data = _run(ctx, lambda engine, config: export_questions(engine, config, form, session))
    if output is None:
        click.echo(data, nl=False)
    else:
        output.write_bytes(data)
        click.echo(f"{output}: {len(data)} bytes", err=True)
