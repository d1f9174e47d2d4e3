"""Running the product: job workers, the sweep, the queue probe, and ``serve`` (everything in
one process tree)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import click

from referrals.casework.tasks import refresh_dashboards
from referrals.health.services import QueueProbeService
from referrals.intake.attachments import AttachmentStore
from referrals.intake.housekeeping import (
    DEFAULT_MIN_AGE,
    AttachmentHousekeeping,
    HousekeepingReport,
)
from referrals.intake.processing import MAX_ATTEMPTS
from referrals.intake.sweep import DEFAULT_GRACE, Swept, TipSweeper
from referrals.jobs import JobContext, at_most_every
from referrals.onward.tasks import poll_correspondents, resend_packages
from referrals.triage.tasks import flag_sla_breaches, rescore_stale
from tipline.cli.environment import (
    initialised_runtime,
    read_settings,
    refuse_on_a_partner_facing_host,
)
from tipline.config import Face


@click.command()
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
@click.option(
    "--housekeeping-every",
    default=3600,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds between passes over attachment storage (one worker at a time).",
)
def worker(
    burst: bool, name: str | None, sweep_every: int, sweep_grace: int, housekeeping_every: int
) -> None:
    """Run a worker on the queues (tip processing first). Run any number, on any hosts.

    Workers also sweep: a received tip that no live job covers (Redis lost it, a worker was
    killed) is queued again, after a back-off; one out of attempts is quarantined. They flag
    tips past their first-triage SLA. And, less often, they remove what killed uploads left in
    attachment storage (see `housekeeping`).
    """
    settings = read_settings()
    refuse_on_a_partner_facing_host(settings, "runs no job workers (they decrypt tips)")
    runtime = initialised_runtime(settings)
    grace = timedelta(seconds=sweep_grace)
    store = AttachmentStore(settings.attachments_dir)

    def sweep_tips(context: JobContext) -> Swept:
        sweeper = TipSweeper(
            context.session_factory,
            queue=context.queue,
            clock=context.clock,
            audit_key=context.audit_key,
        )
        return sweeper.sweep(grace=grace)

    def keep_house(context: JobContext) -> HousekeepingReport:
        return AttachmentHousekeeping(
            context.session_factory, store=store, clock=context.clock
        ).run()

    try:
        rq_worker = runtime.queue.worker(
            runtime.job_context(),
            name=name,
            maintenance=(
                sweep_tips,
                at_most_every(housekeeping_every, "attachment-housekeeping", keep_house),
                # Every minute at most: a P1's SLA is an hour.
                at_most_every(60, "sla-clocks", flag_sla_breaches),
                # A rules change whose re-scoring job was lost is caught up within minutes.
                at_most_every(300, "rescore-stale", rescore_stale),
                # Leads' dashboards read these figures: a minute old at most.
                at_most_every(60, "dashboards", refresh_dashboards),
                # What other centres give back on the packages delivered to them.
                at_most_every(60, "correspondents", poll_correspondents),
                # Deliveries a lost job left behind.
                at_most_every(300, "resend-packages", resend_packages),
            ),
            maintenance_interval=sweep_every,
        )
        rq_worker.work(burst=burst, with_scheduler=not burst, logging_level=settings.log_level)
    finally:
        runtime.close()


@click.command()
@click.option(
    "--grace",
    default=int(DEFAULT_GRACE.total_seconds()),
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds a tip may wait for its job before it counts as left behind.",
)
def sweep(grace: int) -> None:
    """Queue again every unfinished tip that no live job covers, once it has waited its
    back-off, and quarantine those out of attempts (workers also do this every minute).
    Prints how many of each."""
    runtime = initialised_runtime(read_settings())
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


@click.command()
@click.option(
    "--min-age",
    default=int(DEFAULT_MIN_AGE.total_seconds()),
    show_default=True,
    type=click.IntRange(min=0),
    help="Seconds since a file last changed before it may be removed.",
)
def housekeeping(min_age: int) -> None:
    """Remove what killed uploads left in attachment storage (workers also do this hourly):
    partial uploads, and finished files no attachment was recorded for (no receipt was given
    for either). Prints how many of each."""
    settings = read_settings()
    runtime = initialised_runtime(settings)
    try:
        report = AttachmentHousekeeping(
            runtime.session_factory,
            store=AttachmentStore(settings.attachments_dir),
            clock=runtime.clock,
        ).run(min_age=timedelta(seconds=min_age))
    finally:
        runtime.close()
    click.echo(
        f"removed {report.partials_removed} partial upload(s) and {report.orphans_removed} "
        "stored file(s) never recorded"
    )


@click.command()
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for a worker.")
def probe(timeout: float) -> None:
    """Send a probe through the queue and wait until a worker answers it.

    Exits 0 when answered, 1 when no worker answered in time: tips would not be processed.
    """
    runtime = initialised_runtime(read_settings())
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


@click.command()
@click.option("--bind", default="127.0.0.1:5000", show_default=True, help="Address to listen on.")
@click.option("--web-workers", default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--workers", "job_workers", default=1, show_default=True, help="Job workers.")
def serve(bind: str, web_workers: int, job_workers: int) -> None:
    """Run the product in one process tree: the web server (gunicorn) and job workers.

    Stops them all, and the embedded Redis, on Ctrl-C or SIGTERM. For production, run
    gunicorn and `tipline worker` as services of their own instead (see the README).
    """
    settings = read_settings()
    if job_workers:
        refuse_on_a_partner_facing_host(settings, "runs no job workers: use --workers 0")
    # Building the runtime here starts the embedded Redis before the children race to.
    runtime = initialised_runtime(settings, face=settings.web_face if not job_workers else Face.ALL)
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
