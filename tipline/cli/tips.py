"""``tipline tip``: tips quarantined after faults on our side, and sending them back."""

from __future__ import annotations

import json

import click
from sqlalchemy.orm import Session

from referrals.intake.quarantine import NotQuarantined, TipQuarantine
from tipline.cli.environment import cli_actor, initialised_runtime, read_settings
from tipline.runtime import Runtime


@click.group()
def tip() -> None:
    """Tips held after processing failed on our side: list them, retry them."""


def _quarantine(runtime: Runtime, session: Session) -> TipQuarantine:
    return TipQuarantine(
        session, queue=runtime.queue, clock=runtime.clock, audit=runtime.audit(session)
    )


@tip.command("quarantined")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def tip_quarantined(as_json: bool) -> None:
    """List quarantined tips, longest held first, with their attempts and the last fault (never
    their content). Fix the fault, then `tipline tip retry`."""
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory() as session:
            held = _quarantine(runtime, session).quarantined()
    finally:
        runtime.close()
    rows = [
        {
            "id": item.id,
            "tracking_number": item.tracking_number,
            "agency": {"id": item.agency_id, "name": item.agency_name},
            "received_at": item.received_at.isoformat(),
            "quarantined_at": item.quarantined_at.isoformat() if item.quarantined_at else None,
            "attempts": item.attempts,
            "fault": item.fault,
        }
        for item in held
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no quarantined tips")
    for item in held:
        when = f"{item.quarantined_at:%Y-%m-%d %H:%M}" if item.quarantined_at else "-"
        click.echo(
            f"{item.id}  {item.tracking_number}  since {when} UTC  {item.attempts} attempts  "
            f"agency {item.agency_id} ({item.agency_name})\n    {item.fault or '-'}"
        )


@tip.command("retry")
@click.argument("tip_ids", metavar="TIP_ID...", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Retry every quarantined tip.")
def tip_retry(tip_ids: tuple[str, ...], every: bool) -> None:
    """Send quarantined tips back to processing with a fresh set of attempts (after the fault
    was fixed); each retry is audited."""
    if every == bool(tip_ids):
        raise click.UsageError("give one or more TIP_IDs, or --all")
    runtime = initialised_runtime(read_settings())
    retried: list[str] = []
    missing: list[str] = []
    try:
        with runtime.session_factory() as session:
            service = _quarantine(runtime, session)
            if every:
                retried = service.retry_all(actor=cli_actor())
            for tip_id in tip_ids:
                try:
                    service.retry(tip_id, actor=cli_actor())
                except NotQuarantined:
                    missing.append(tip_id)
                else:
                    retried.append(tip_id)
    finally:
        runtime.close()
    click.echo(f"{len(retried)} tip(s) queued again")
    if missing:
        raise click.ClickException("not quarantined (unknown, or not held): " + ", ".join(missing))
