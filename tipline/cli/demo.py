"""``tipline demo``: fill an empty instance with a fictional, living centre."""

from __future__ import annotations

import click

from tipline import demo as story
from tipline.cli.environment import initialised_runtime, read_settings


@click.command("demo")
@click.option(
    "--tips",
    default=240,
    show_default=True,
    type=click.IntRange(min=40, max=2000),
    help="How many tips partners send (a minute or so per hundred).",
)
@click.option(
    "--if-empty",
    is_flag=True,
    help="On an instance that holds something already, say so and succeed (scripts/run --demo).",
)
def demo(tips: int, if_empty: bool) -> None:
    """Fill an empty instance with fictional agencies, teams, units, staff of every role, and
    tips and referrals in every state, with operations, outcomes and care plans; print each
    demo account's one-time enrolment link. Refuses an instance that holds anything."""
    settings = read_settings()
    runtime = initialised_runtime(settings)
    try:
        click.echo(f"Filling the instance with a fictional centre ({tips} tips)...")
        try:
            filled = story.fill(runtime, tips=tips, base_url=settings.base_url)
        except story.DemoRefused as refused:
            if if_empty:
                click.echo(f"No demo data added: {refused}.")
                return
            raise click.ClickException(str(refused)) from None
    finally:
        runtime.close()
    counts = filled.counts
    click.echo(
        f"Made {counts['tips']} tips, {counts['referrals']} referrals, "
        f"{counts['operations']} operations and {counts['children']} children in aftercare."
    )
    click.echo(
        "Demo accounts: open a link to set a password and enrol an authenticator, then sign "
        "in with that e-mail address. Each link works once, for 72 hours."
    )
    for account in filled.accounts:
        waiting = (
            " (works once another administrator approves it)" if account.awaiting_approval else ""
        )
        click.echo(
            f"  {account.role:<10} {account.email}{waiting}\n             {account.enrolment_link}"
        )
