"""``tipline team``, ``tipline unit`` and ``tipline user``: teams, law-enforcement units,
accounts, enrolment links."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import click
from sqlalchemy.orm import Session

from referrals.accounts.models import Role, User
from referrals.accounts.services import (
    AccountError,
    AccountService,
    ApprovalRule,
    TeamService,
    UnitService,
)
from tipline.cli.environment import cli_actor, initialised_runtime, read_settings
from tipline.config import Settings
from tipline.runtime import Runtime

T = TypeVar("T")


@click.group()
def team() -> None:
    """Teams of analysts and leads, and the jurisdiction each works."""


@team.command("add")
@click.option("--name", required=True, help="The team's name, unique.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 country code.")
@click.option("--region", "regions", multiple=True, help="A region covered (repeat); none: all.")
def team_add(name: str, country: str, regions: tuple[str, ...]) -> None:
    """Create a team with its jurisdiction (a country, optionally some of its regions)."""
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory() as session:
            try:
                created = TeamService(session, audit=runtime.audit(session)).add(
                    name=name, country=country, regions=list(regions), actor=cli_actor()
                )
            except AccountError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"team {created.id}: {created.name} ({created.country})")
    finally:
        runtime.close()


@click.group()
def unit() -> None:
    """Law-enforcement units referrals are handed to, and the jurisdiction each works."""


@unit.command("add")
@click.option("--name", required=True, help="The unit's name, unique.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 country code.")
@click.option("--region", "regions", multiple=True, help="A region covered (repeat); none: all.")
def unit_add(name: str, country: str, regions: tuple[str, ...]) -> None:
    """Register a unit with its jurisdiction; its officers are accounts with --unit."""
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory() as session:
            try:
                created = UnitService(session, audit=runtime.audit(session)).add(
                    name=name, country=country, regions=list(regions), actor=cli_actor()
                )
            except AccountError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"unit {created.id}: {created.name} ({created.country})")
    finally:
        runtime.close()


@click.group()
def user() -> None:
    """Accounts: create them (printing a one-time enrolment link), disable them, reset 2FA."""


def _accounts(runtime: Runtime, session: Session) -> AccountService:
    return AccountService(
        session,
        box=runtime.secret_box,
        hashing=runtime.password_hashing,
        audit=runtime.audit(session),
        clock=runtime.clock,
        approval=ApprovalRule(runtime.settings.enrolment_approval),
    )


# Said when a link waits for the four-eyes rule: an operator on the host is not a second
# administrator.
AWAITING_APPROVAL = (
    "this link works only once an administrator approves it in the web app "
    "(Accounts, then Pending enrolments)"
)


def _enrolment_link(settings: Settings, token: str) -> str:
    # In the query string: access logs are kept without it (see the README).
    return f"{settings.base_url}/enrol?token={token}"


@user.command("add")
@click.option("--email", required=True, help="The person's e-mail address (their login).")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="partner (needs --agency), analyst, lead, officer (needs --unit), caseworker or admin.",
)
@click.option("--agency", "agency_id", type=int, default=None, help="Agency id, for partners.")
@click.option("--team", "team_name", default=None, help="Team name, for analysts and leads.")
@click.option("--unit", "unit_name", default=None, help="Unit name, for officers.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def user_add(
    email: str,
    role: str,
    agency_id: int | None,
    team_name: str | None,
    unit_name: str | None,
    as_json: bool,
) -> None:
    """Create an account and print its one-time enrolment link (single use, expires in 72 h),
    where the person sets a password and enrols an authenticator."""
    settings = read_settings()
    runtime = initialised_runtime(settings)
    try:
        with runtime.session_factory() as session:
            try:
                enrolment = _accounts(runtime, session).create(
                    email=email,
                    role=role,
                    agency_id=agency_id,
                    team=team_name,
                    unit=unit_name,
                    actor=cli_actor(),
                )
            except AccountError as exc:
                raise click.ClickException(str(exc)) from None
            link = _enrolment_link(settings, enrolment.token)
            answer = {
                "id": enrolment.user.id,
                "email": enrolment.user.email,
                "enrolment_link": link,
                "expires_at": enrolment.expires_at.isoformat(),
                "awaiting_approval": enrolment.awaiting_approval,
            }
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps(answer))
        return
    click.echo(f"account {answer['id']}: {answer['email']} ({role})")
    if enrolment.awaiting_approval:
        click.echo(f"one-time enrolment link ({AWAITING_APPROVAL}):\n{link}")
        return
    click.echo(f"one-time enrolment link (until {answer['expires_at']}):\n{link}")


@user.command("first-admin")
@click.option(
    "--email",
    default="admin@centre.example",
    show_default=True,
    help="The first administrator's e-mail address (their login).",
)
def user_first_admin(email: str) -> None:
    """Make sure someone can administer this instance: print a one-time enrolment link for the
    first admin, unless an enrolled admin exists already (then print nothing of the sort)."""
    settings = read_settings()
    runtime = initialised_runtime(settings)
    try:
        with runtime.session_factory() as session:
            try:
                enrolment = _accounts(runtime, session).first_admin(email=email, actor=cli_actor())
            except AccountError as exc:
                raise click.ClickException(str(exc)) from None
            if enrolment is None:
                click.echo("an enrolled administrator exists: sign in at " + settings.base_url)
                return
            link = _enrolment_link(settings, enrolment.token)
            who = enrolment.user.email
    finally:
        runtime.close()
    click.echo(f"First administrator {who}: open this one-time link to set up the account")
    click.echo(f"(valid until {enrolment.expires_at:%Y-%m-%d %H:%M} UTC):\n{link}")


def _on_account(reference: str, change: Callable[[AccountService, User], T]) -> T:
    """Apply ``change`` to the account ``reference`` (id or e-mail); errors become one line."""
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory() as session:
            accounts = _accounts(runtime, session)
            try:
                return change(accounts, accounts.find(reference))
            except AccountError as exc:
                raise click.ClickException(str(exc)) from None
    finally:
        runtime.close()


@user.command("disable")
@click.argument("account", metavar="ACCOUNT")
def user_disable(account: str) -> None:
    """Disable ACCOUNT (id or e-mail) and end its sessions at once."""
    _on_account(account, lambda accounts, found: accounts.disable(found, actor=cli_actor()))
    click.echo(f"{account}: disabled")


@user.command("enable")
@click.argument("account", metavar="ACCOUNT")
def user_enable(account: str) -> None:
    """Enable ACCOUNT (id or e-mail) again."""
    _on_account(account, lambda accounts, found: accounts.enable(found, actor=cli_actor()))
    click.echo(f"{account}: enabled")


@user.command("unlock")
@click.argument("account", metavar="ACCOUNT")
def user_unlock(account: str) -> None:
    """Lift ACCOUNT's lockout after failed logins."""
    _on_account(account, lambda accounts, found: accounts.unlock(found, actor=cli_actor()))
    click.echo(f"{account}: unlocked")


@user.command("reset-2fa")
@click.argument("account", metavar="ACCOUNT")
def user_reset_2fa(account: str) -> None:
    """Forget ACCOUNT's authenticator and password, end its sessions, and print a new
    one-time enrolment link."""
    enrolment = _on_account(
        account, lambda accounts, found: accounts.reset_second_factor(found, actor=cli_actor())
    )
    link = _enrolment_link(read_settings(), enrolment.token)
    waiting = f" ({AWAITING_APPROVAL})" if enrolment.awaiting_approval else ""
    click.echo(f"{account}: second factor reset; new enrolment link{waiting}:\n{link}")
