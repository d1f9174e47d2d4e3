"""The ``tipline`` command: set up a home, run workers, serve the product."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import IO

import click
from sqlalchemy.orm import Session

from referrals.database import head_revision, schema_revision, upgrade_schema
from referrals.health.services import QueueProbeService
from referrals.intake.agencies import AgencyError, AgencyService
from referrals.intake.services import IntakeKeyMissing, IntakeKeyService
from referrals.intake.sweep import DEFAULT_GRACE, TipSweeper
from referrals.jobs import JobContext
from tipline.config import ConfigError, Settings
from tipline.instance import (
    BLIND_INDEX_KEY,
    FLASK_SECRET_KEY,
    ensure_intake_passphrase,
    ensure_secret,
    private_folder,
)
from tipline.runtime import Runtime


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
    for name in (FLASK_SECRET_KEY, BLIND_INDEX_KEY):
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

    def sweep_tips(context: JobContext) -> list[str]:
        sweeper = TipSweeper(context.session_factory, queue=context.queue, clock=context.clock)
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
        sweeper = TipSweeper(runtime.session_factory, queue=runtime.queue, clock=runtime.clock)
        requeued = sweeper.sweep(grace=timedelta(seconds=grace))
    finally:
        runtime.close()
    click.echo(f"{len(requeued)} tip(s) queued again")


@cli.group()
def agency() -> None:
    """Partner agencies: register them, mint API tokens, rotate their keys."""


def _agency_service(runtime: Runtime, session: Session) -> AgencyService:
    return AgencyService(session, keyring=runtime.keyring, clock=runtime.clock)


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
                    name=name, country=country, key_data=key_file.read()
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
                token = service.mint_token(found)
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
                pinned = service.rotate_key(service.find(agency_ref), key_file.read())
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
                    "wsgi:app",
                ]
            ),
            *(_spawn([sys.executable, "-m", "tipline", "worker"]) for _ in range(job_workers)),
        ]
        click.echo(f"Tipline is serving on http://{bind}/ (Ctrl-C stops it)")
        _supervise(children)
    finally:
        runtime.close(stop_gpg_agent=True)


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
