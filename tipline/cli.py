"""The ``tipline`` command: set up a home, run workers, serve the product."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import IO, TypeVar

import click
from sqlalchemy.orm import Session

from referrals.accounts.models import Role, User
from referrals.accounts.services import AccountError, AccountService, TeamService
from referrals.database import head_revision, schema_revision, upgrade_schema
from referrals.health.services import QueueProbeService
from referrals.intake.agencies import AgencyError, AgencyService
from referrals.intake.processing import MAX_ATTEMPTS
from referrals.intake.services import IntakeKeyMissing, IntakeKeyService
from referrals.intake.sweep import DEFAULT_GRACE, Swept, TipSweeper
from referrals.jobs import JobContext
from tipline.config import ConfigError, Settings
from tipline.instance import (
    SECRET_SIZES,
    ensure_intake_passphrase,
    ensure_secret,
    private_folder,
)
from tipline.runtime import Runtime

T = TypeVar("T")


def _settings() -> Settings:
    return Settings.from_environment()


def _initialised_runtime(settings: Settings) -> Runtime:
    """A runtime on a database at the schema this code needs; otherwise say what to run."""
    runtime = Runtime.build(settings)
    current = schema_revision(runtime.engine)
    if current != head_revision():
        runtime.close()
        state = (
            "not initialised" if current is None else f"at schema {current}, not {head_revision()}"
        )
        raise click.ClickException(f"the database is {state}: run `tipline init`")
    return runtime


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tipline: investigation tip intake and cross-border referrals.

    Settings come from TIPLINE_* environment variables (see the README); everything local lives
    in TIPLINE_HOME (default ./instance).
    """


@cli.command()
def init() -> None:
    """Create or upgrade everything under the home: schema, secrets, the intake key pair.

    Safe to run again: what exists is left as it is, and a second run changes nothing.
    """
    settings = _settings()
    changes: list[str] = []
    private_folder(settings.home)
    for name in SECRET_SIZES:
        if ensure_secret(settings, name):
            changes.append(f"created secret {name}")
    if ensure_intake_passphrase(settings):
        changes.append("created secret intake_key_passphrase")
    runtime = Runtime.build(settings)
    try:
        before = schema_revision(runtime.engine)
        if before != head_revision():
            upgrade_schema(runtime.engine)
            changes.append(f"migrated the database from {before or 'empty'} to {head_revision()}")
        with runtime.session_factory() as session:
            service = IntakeKeyService(session, keyring=runtime.keyring, clock=runtime.clock)
            try:
                fingerprint, created = service.ensure()
            except IntakeKeyMissing as exc:
                raise click.ClickException(str(exc)) from None
        if created:
            changes.append(f"generated the intake key {fingerprint}")
    finally:
        runtime.close(stop_gpg_agent=True)
    for change in changes:
        click.echo(change)
    click.echo(f"{settings.home}: " + ("initialised" if changes else "already up to date"))


@cli.command("intake-key")
def intake_key() -> None:
    """Print the armored public intake key: what partners encrypt tips to."""
    runtime = _initialised_runtime(_settings())
    try:
        with runtime.session_factory() as session:
            service = IntakeKeyService(session, keyring=runtime.keyring, clock=runtime.clock)
            try:
                fingerprint = service.current()
            except IntakeKeyMissing as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(runtime.keyring.export_public_key(fingerprint), nl=False)
    finally:
        runtime.close()


@cli.command()
@click.option("--burst", is_flag=True, help="Run the jobs waiting now, then exit.")
@click.option("--name", default=None, help="Worker name (default: rq's host.pid-based name).")
@click.option(
    "--sweep-every",
    default=60,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds between sweeps for tips a lost job left behind (one worker sweeps at a time).",
)
@click.option(
    "--sweep-grace",
    default=int(DEFAULT_GRACE.total_seconds()),
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds a tip may wait for its job before the sweep queues it again.",
)
def worker(burst: bool, name: str | None, sweep_every: int, sweep_grace: int) -> None:
    """Run a worker on the queues (tip processing first). Run any number, on any hosts.

    Workers also sweep: a received tip that no live job covers (Redis lost it, a worker was
    killed) is queued again.
    """
    settings = _settings()
    runtime = _initialised_runtime(settings)
    grace = timedelta(seconds=sweep_grace)

    def sweep_tips(context: JobContext) -> Swept:
        sweeper = TipSweeper(
            context.session_factory,
            queue=context.queue,
            clock=context.clock,
            audit_key=context.audit_key,
        )
        return sweeper.sweep(grace=grace)

    try:
        rq_worker = runtime.queue.worker(
            runtime.job_context(),
            name=name,
            maintenance=(sweep_tips,),
            maintenance_interval=sweep_every,
        )
        rq_worker.work(burst=burst, with_scheduler=not burst, logging_level=settings.log_level)
    finally:
        runtime.close()


@cli.command()
@click.option(
    "--grace",
    default=int(DEFAULT_GRACE.total_seconds()),
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds a tip may wait for its job before it counts as left behind.",
)
def sweep(grace: int) -> None:
    """Queue again every received tip that no live job covers (workers also do this every
    minute). Prints how many were queued."""
    runtime = _initialised_runtime(_settings())
    try:
        sweeper = TipSweeper(
            runtime.session_factory,
            queue=runtime.queue,
            clock=runtime.clock,
            audit_key=runtime.audit_key,
        )
        swept = sweeper.sweep(grace=timedelta(seconds=grace))
    finally:
        runtime.close()
    click.echo(f"{len(swept.requeued)} tip(s) queued again")
    if swept.quarantined:
        click.echo(
            f"{len(swept.quarantined)} tip(s) quarantined after {MAX_ATTEMPTS} attempts: "
            "tipline tip quarantined"
        )


@cli.group()
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
    runtime = _initialised_runtime(_settings())
    try:
        with runtime.session_factory() as session:
            try:
                added, token = _agency_service(runtime, session).add(
                    name=name, country=country, key_data=key_file.read(), actor=_cli_actor()
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
    runtime = _initialised_runtime(_settings())
    try:
        with runtime.session_factory() as session:
            service = _agency_service(runtime, session)
            try:
                found = service.find(agency_ref)
                token = service.mint_token(found, actor=_cli_actor())
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
    runtime = _initialised_runtime(_settings())
    try:
        with runtime.session_factory() as session:
            service = _agency_service(runtime, session)
            try:
                pinned = service.rotate_key(
                    service.find(agency_ref), key_file.read(), actor=_cli_actor()
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
    runtime = _initialised_runtime(_settings())
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


@cli.group()
def audit() -> None:
    """The audit log: check that nothing in it was altered or removed."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain from the first record to the last.

    Exits 0 if intact (printing the last record's id and hash: keep them elsewhere to detect
    records cut off the end), 1 naming the first broken record otherwise.
    """
    runtime = _initialised_runtime(_settings())
    try:
        with runtime.session_factory() as session:
            result = runtime.audit(session).verify()
    finally:
        runtime.close()
    if not result.ok:
        click.echo(
            f"audit log BROKEN at record {result.first_broken_id}: {result.problem} "
            f"({result.checked} records checked)",
            err=True,
        )
        sys.exit(1)
    last = f"; last record {result.last_id} {result.last_hash}" if result.last_id else ""
    click.echo(f"audit log intact: {result.checked} records{last}")


@cli.group()
def team() -> None:
    """Teams of analysts and leads, and the jurisdiction each works."""


@team.command("add")
@click.option("--name", required=True, help="The team's name, unique.")
@click.option("--country", required=True, help="ISO 3166-1 alpha-2 country code.")
@click.option("--region", "regions", multiple=True, help="A region covered (repeat); none: all.")
def team_add(name: str, country: str, regions: tuple[str, ...]) -> None:
    """Create a team with its jurisdiction (a country, optionally some of its regions)."""
    runtime = _initialised_runtime(_settings())
    try:
        with runtime.session_factory() as session:
            try:
                created = TeamService(session, audit=runtime.audit(session)).add(
                    name=name, country=country, regions=list(regions), actor=_cli_actor()
                )
            except AccountError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"team {created.id}: {created.name} ({created.country})")
    finally:
        runtime.close()


@cli.group()
def user() -> None:
    """Accounts: create them (printing a one-time enrolment link), disable them, reset 2FA."""


def _accounts(runtime: Runtime, session: Session) -> AccountService:
    return AccountService(
        session,
        box=runtime.secret_box,
        hashing=runtime.password_hashing,
        audit=runtime.audit(session),
        clock=runtime.clock,
    )


def _cli_actor() -> str:
    # Who ran the command, as the operating system knows them: the audit log's "who".
    return f"cli:{getpass.getuser()}"


def _enrolment_link(settings: Settings, token: str) -> str:
    # In the query string: access logs are kept without it (see the README).
    return f"{settings.base_url}/enrol?token={token}"


@user.command("add")
@click.option("--email", required=True, help="The person's e-mail address (their login).")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="partner (needs --agency), analyst, lead or admin.",
)
@click.option("--agency", "agency_id", type=int, default=None, help="Agency id, for partners.")
@click.option("--team", "team_name", default=None, help="Team name, for analysts and leads.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def user_add(
    email: str, role: str, agency_id: int | None, team_name: str | None, as_json: bool
) -> None:
    """Create an account and print its one-time enrolment link (single use, expires in 72 h),
    where the person sets a password and enrols an authenticator."""
    settings = _settings()
    runtime = _initialised_runtime(settings)
    try:
        with runtime.session_factory() as session:
            try:
                enrolment = _accounts(runtime, session).create(
                    email=email, role=role, agency_id=agency_id, team=team_name, actor=_cli_actor()
                )
            except AccountError as exc:
                raise click.ClickException(str(exc)) from None
            link = _enrolment_link(settings, enrolment.token)
            answer = {
                "id": enrolment.user.id,
                "email": enrolment.user.email,
                "enrolment_link": link,
                "expires_at": enrolment.expires_at.isoformat(),
            }
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps(answer))
        return
    click.echo(f"account {answer['id']}: {answer['email']} ({role})")
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
    settings = _settings()
    runtime = _initialised_runtime(settings)
    try:
        with runtime.session_factory() as session:
            try:
                enrolment = _accounts(runtime, session).first_admin(email=email, actor=_cli_actor())
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
    runtime = _initialised_runtime(_settings())
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
    _on_account(account, lambda accounts, found: accounts.disable(found, actor=_cli_actor()))
    click.echo(f"{account}: disabled")


@user.command("enable")
@click.argument("account", metavar="ACCOUNT")
def user_enable(account: str) -> None:
    """Enable ACCOUNT (id or e-mail) again."""
    _on_account(account, lambda accounts, found: accounts.enable(found, actor=_cli_actor()))
    click.echo(f"{account}: enabled")


@user.command("unlock")
@click.argument("account", metavar="ACCOUNT")
def user_unlock(account: str) -> None:
    """Lift ACCOUNT's lockout after failed logins."""
    _on_account(account, lambda accounts, found: accounts.unlock(found, actor=_cli_actor()))
    click.echo(f"{account}: unlocked")


@user.command("reset-2fa")
@click.argument("account", metavar="ACCOUNT")
def user_reset_2fa(account: str) -> None:
    """Forget ACCOUNT's authenticator and password, end its sessions, and print a new
    one-time enrolment link."""
    enrolment = _on_account(
        account, lambda accounts, found: accounts.reset_second_factor(found, actor=_cli_actor())
    )
    link = _enrolment_link(_settings(), enrolment.token)
    click.echo(f"{account}: second factor reset; new enrolment link:\n{link}")


@cli.command()
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for a worker.")
def probe(timeout: float) -> None:
    """Send a probe through the queue and wait until a worker answers it.

    Exits 0 when answered, 1 when no worker answered in time: tips would not be processed.
    """
    runtime = _initialised_runtime(_settings())
    try:
        with runtime.session_factory() as session:
            service = QueueProbeService(session, queue=runtime.queue, clock=runtime.clock)
            sent = service.send()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                probe = service.get(sent.id)
                if probe is not None and probe.answered_at is not None:
                    took = (probe.answered_at - probe.sent_at).total_seconds()
                    click.echo(f"probe {sent.id} answered by {probe.answered_by} in {took:.3f} s")
                    return
                time.sleep(0.1)
    finally:
        runtime.close()
    click.echo(f"probe {sent.id}: no worker answered within {timeout:g} s", err=True)
    sys.exit(1)


@cli.command()
@click.option("--bind", default="127.0.0.1:5000", show_default=True, help="Address to listen on.")
@click.option("--web-workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--workers", "job_workers", default=1, show_default=True, help="Job workers.")
def serve(bind: str, web_workers: int, job_workers: int) -> None:
    """Run the product in one process tree: the web server (gunicorn) and job workers.

    Stops them all, and the embedded Redis, on Ctrl-C or SIGTERM. For production, run
    gunicorn and `tipline worker` as services of their own instead (see the README).
    """
    # Building the runtime here starts the embedded Redis before the children race to.
    runtime = _initialised_runtime(_settings())
    try:
        children = [
            _spawn(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--bind",
                    bind,
                    "--workers",
                    str(web_workers),
                    "--access-logfile",
                    "-",
                    "--access-logformat",
                    ACCESS_LOG_FORMAT,
                    "wsgi:app",
                ]
            ),
            *(_spawn([sys.executable, "-m", "tipline", "worker"]) for _ in range(job_workers)),
        ]
        click.echo(f"Tipline is serving on http://{bind}/ (Ctrl-C stops it)")
        _supervise(children)
    finally:
        runtime.close(stop_gpg_agent=True)


# gunicorn's default access log has the request line with its query string, where an enrolment
# link carries its one-time token: log the path alone.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=os.environ.copy())  # noqa: S603 - our own argv


def _supervise(children: list[subprocess.Popen[bytes]]) -> None:
    """Wait until a signal or any child exits, then stop every child."""
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> None:
    """Console-script entry point: a bad setting is one line on stderr and exit status 2."""
    try:
        cli.main(prog_name="tipline", standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"tipline: {exc}", err=True)
        sys.exit(2)
