"""``tipline agency``: partner agencies, their API tokens and their keys."""

from __future__ import annotations

import json
from typing import IO

import click
from sqlalchemy.orm import Session

from referrals.intake.agencies import AgencyError, AgencyService
from referrals.onward.services import OnwardPackages, PackageRefused, check_base_url
from referrals.onward.tasks import poll_now
from tipline.cli.environment import cli_actor, initialised_runtime, read_settings
from tipline.runtime import Runtime


@click.group()
def agency() -> None:
    """Partner agencies: register them, mint API tokens, rotate their keys."""


def _agency_service(runtime: Runtime, session: Session) -> AgencyService:
    return AgencyService(
        session, keyring=runtime.keyring, clock=runtime.clock, audit=runtime.audit(session)
    )


@agency.command("add")
@click.option("--name", required=True, help="The agency's name, unique.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 country code, e.g. GB.")
@click.option(
    "--key-file",
    required=True,
    type=click.File("rb"),
    help="The agency's OpenPGP public key (armored or binary), exactly one key.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"id": ..., "token": ...}.')
def agency_add(name: str, country: str, key_file: IO[bytes], as_json: bool) -> None:
    """Register a partner agency with its public key (pinned by fingerprint) and print its
    id and a new API token. The token is shown this once: only its hash is kept."""
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory() as session:
            try:
                added, token = _agency_service(runtime, session).add(
                    name=name, country=country, key_data=key_file.read(), actor=cli_actor()
                )
            except AgencyError as exc:
                raise click.ClickException(str(exc)) from None
            fingerprint = added.keys[0].fingerprint
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps({"id": added.id, "token": token}))
        return
    click.echo(f"agency {added.id}: {added.name} ({added.country}), key {fingerprint}")
    click.echo(f"API token (shown once, give it to the agency over a secure channel):\n{token}")


@agency.command("token")
@click.argument("agency_ref", metavar="AGENCY")
@click.option("--json", "as_json", is_flag=True, help='Print {"id": ..., "token": ...}.')
def agency_token(agency_ref: str, as_json: bool) -> None:
    """Mint a new API token for AGENCY (id or name); the old one stops working at once."""
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory() as session:
            service = _agency_service(runtime, session)
            try:
                found = service.find(agency_ref)
                token = service.mint_token(found, actor=cli_actor())
            except AgencyError as exc:
                raise click.ClickException(str(exc)) from None
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps({"id": found.id, "token": token}))
        return
    click.echo(f"new API token for agency {found.id} (the old one is revoked):\n{token}")


@agency.command("key")
@click.argument("agency_ref", metavar="AGENCY")
@click.option(
    "--key-file", required=True, type=click.File("rb"), help="The agency's new public key."
)
def agency_key(agency_ref: str, key_file: IO[bytes]) -> None:
    """Pin a new OpenPGP key for AGENCY; the old one is retired, kept on record for the tips
    it signed."""
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory() as session:
            service = _agency_service(runtime, session)
            try:
                pinned = service.rotate_key(
                    service.find(agency_ref), key_file.read(), actor=cli_actor()
                )
            except AgencyError as exc:
                raise click.ClickException(str(exc)) from None
    finally:
        runtime.close()
    click.echo(f"agency {pinned.agency_id}: now pinned to key {pinned.fingerprint}")


@agency.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def agency_list(as_json: bool) -> None:
    """List agencies with their current key's fingerprint and expiry."""
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory() as session:
            rows = []
            for item in _agency_service(runtime, session).all():
                key = item.current_key
                rows.append(
                    {
                        "id": item.id,
                        "name": item.name,
                        "country": item.country,
                        "fingerprint": key.fingerprint if key else None,
                        "expires": key.expires_at.isoformat() if key and key.expires_at else None,
                    }
                )
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no agencies yet: tipline agency add --help")
    for row in rows:
        click.echo(
            f"{row['id']:>5}  {row['country']}  {row['fingerprint'] or '-':40}  "
            f"expires {row['expires'] or 'never'}  {row['name']}"
        )


@agency.command("connect")
@click.argument("agency_ref", metavar="AGENCY")
@click.option(
    "--url",
    required=True,
    help="The other centre's address, https://host[:port] (its partner API is under /api/v1).",
)
@click.option(
    "--token-file",
    required=True,
    type=click.File("r"),
    help="A file (or - for standard input) holding the API token that centre issued to this "
    "one: never on the command line, where other users of the host could read it.",
)
def agency_connect(agency_ref: str, url: str, token_file: IO[str]) -> None:
    """Deliver onward packages for AGENCY (another centre running Tipline, registered here
    with its intake key) to its API, and fetch its feedback from there. The token is sealed
    at rest."""
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory() as session:
            try:
                found = _agency_service(runtime, session).find(agency_ref)
                OnwardPackages(
                    session,
                    audit=runtime.audit(session),
                    clock=runtime.clock,
                    secret_box=runtime.secret_box,
                ).connect(found, url, token_file.read(), actor=cli_actor())
            except (AgencyError, PackageRefused) as exc:
                raise click.ClickException(str(exc)) from None
            name, agency_id = found.name, found.id
    finally:
        runtime.close()
    click.echo(f"agency {agency_id}: {name}: packages go to {check_base_url(url)}/api/v1/tips")


@agency.command("poll")
def agency_poll() -> None:
    """Fetch now what connected centres gave back: feedback on the packages delivered to them,
    and the status of each (workers do this every minute)."""
    runtime = initialised_runtime(read_settings())
    try:
        report = poll_now(runtime.job_context())
    finally:
        runtime.close()
    click.echo(f"{report.feedback} new feedback, {report.statuses} statuses changed")
