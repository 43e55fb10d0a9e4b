"""Commands for ignored mail, the mail going out (the outbox), and participants' data."""

from __future__ import annotations

from pathlib import Path

import click

from qa_mailer.cli_queues import _ids, _run
from qa_mailer.states import OutboxState


@click.group()
def ignored() -> None:
    """Mail that was recorded and never answered: automatic replies, bounces, no sender."""


@ignored.command("list")
@click.option("--limit", type=int, default=100, show_default=True, help="How many, newest.")
@click.pass_context
def ignored_list(ctx: click.Context, limit: int) -> None:
    """List ignored mail with why it was ignored.

    \b
    Example:
      qa-mailer ignored list --limit 20
    """
    from qa_mailer.organise.queues import ignored_messages

    rows = _run(ctx, lambda engine, config: ignored_messages(engine, limit))
    for row in rows:
        click.echo(
            f"M-{row.id:<5} {row.received_at:%Y-%m-%d %H:%M}  {(row.sender or '(no sender)')[:30]:30}"
            f"  {(row.subject or '')[:40]}"
        )
        click.echo(f"{'':8}{row.reason[:100]}")
    click.echo(f"{len(rows)} ignored")


@click.group()
def outbox() -> None:
    """The mail going out: what waits, what failed and why; send it again now."""


@outbox.command("list")
@click.option(
    "--state", type=click.Choice([s.value for s in OutboxState]), help="Only mails in this state."
)
@click.option("--limit", type=int, default=200, show_default=True, help="How many, newest.")
@click.pass_context
def outbox_list(ctx: click.Context, state: str | None, limit: int) -> None:
    """List outgoing mails with their recipients, attempts, next attempt and last error.

    \b
    Example:
      qa-mailer outbox list --state failed
    """
    from qa_mailer.organise.queues import outbox_mails

    wanted = OutboxState(state) if state else None
    rows = _run(ctx, lambda engine, config: outbox_mails(engine, wanted, limit))
    for mail in rows:
        when = (
            f"sent {mail.sent_at:%Y-%m-%d %H:%M}"
            if mail.sent_at
            else f"next attempt {mail.next_attempt_at:%Y-%m-%d %H:%M:%S}"
            if mail.state == OutboxState.QUEUED
            else ""
        )
        click.echo(
            f"{mail.id:>6}  {mail.key:<18} {mail.state:<8} {mail.attempts} attempt(s)  {when}"
        )
        click.echo(f"{'':8}to {', '.join(mail.recipients)}")
        if mail.last_error:
            click.echo(f"{'':8}last error: {mail.last_error[:200]}")
    click.echo(f"{len(rows)} mail(s)")


@outbox.command("retry")
@click.argument("mail_ids", nargs=-1)
@click.option("--all", "retry_all", is_flag=True, help="Every queued or failed mail.")
@click.pass_context
def outbox_retry(ctx: click.Context, mail_ids: tuple[str, ...], retry_all: bool) -> None:
    """Send queued or failed mails now, instead of at their next attempt.

    Recipients who took a mail already do not get it again.

    \b
    Example:
      qa-mailer outbox retry 41 42
    """
    from qa_mailer.organise.queues import retry_outbox

    if not mail_ids and not retry_all:
        raise click.UsageError("name the mails to send again, or use --all")
    ids = None if retry_all else _ids(mail_ids, "mail")
    retried, report = _run(ctx, lambda engine, config: retry_outbox(engine, config, ids))
    click.echo(f"{len(retried)} mail(s) sent again: {report}")


@click.group()
def participants() -> None:
    """A participant's data on request: export everything held about them, or erase it."""


@participants.command("export")
@click.argument("address")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (default: standard output).",
)
@click.pass_context
def participants_export(ctx: click.Context, address: str, output: Path | None) -> None:
    """Everything held about one participant, as JSON: roster, questions, answers, mail.

    \b
    Example:
      qa-mailer participants export ana@drvo.example.hr --output ana.json
    """
    from qa_mailer.organise.privacy import export_participant

    data = _run(ctx, lambda engine, config: export_participant(engine, config, address))
    if output is None:
        click.echo(data, nl=False)
    else:
        output.write_bytes(data)
        click.echo(f"{output}: {len(data)} bytes", err=True)


@participants.command("erase")
@click.argument("address")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def participants_erase(ctx: click.Context, address: str, yes: bool) -> None:
    """Erase a participant's data: raw mail, questions' text, answers, mail bodies.

    Digests still count their questions (session, country, state, times), anonymised.
    Mail still to be sent to them or about them is not sent.

    \b
    Example:
      qa-mailer participants erase ana@drvo.example.hr --yes
    """
    from qa_mailer.organise.privacy import erase_participant

    if not yes:
        click.confirm(f"Erase everything held about {address}? This cannot be undone", abort=True)
    erased = _run(ctx, lambda engine, config: erase_participant(engine, config, address))
    click.echo(
        f"{address}: {erased.questions} question(s), {erased.messages} received mail(s) and "
        f"{erased.mails} sent mail(s) erased"
    )
    if erased.on_roster:
        click.echo(f"{address} is still on the roster: remove the line from the roster file")
    if erased.mailbox is not None:
        click.echo(f"{erased.mailbox} mail(s) from {address} deleted from the mailbox")
    elif erased.mailbox_error is not None:
        click.echo(f"the mailbox could not be cleaned: {erased.mailbox_error}")
    else:
        click.echo("copies in the mailbox are not touched (privacy.erase_mailbox_copies is off)")
    click.echo("digest files written to disk (digest.write_to) are not touched")
