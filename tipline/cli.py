"""The ``tipline`` command: set up a home, run workers, serve the product."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click

from referrals.database import head_revision, schema_revision, upgrade_schema
from referrals.health.services import QueueProbeService
from referrals.intake.services import IntakeKeyMissing, IntakeKeyService
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
def worker(burst: bool, name: str | None) -> None:
    """Run a worker on the queues (tip processing first). Run any number, on any hosts."""
    settings = _settings()
    runtime = _initialised_runtime(settings)
    try:
        rq_worker = runtime.queue.worker(runtime.job_context(), name=name)
        rq_worker.work(burst=burst, with_scheduler=not burst, logging_level=settings.log_level)
    finally:
        runtime.close()


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
