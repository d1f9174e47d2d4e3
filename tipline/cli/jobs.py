"""``tipline jobs``: jobs rq gave up on, and sending them back."""

from __future__ import annotations

import json

import click

from tipline.cli.environment import cli_actor, initialised_runtime, read_settings


@click.group()
def jobs() -> None:
    """Jobs that failed for good (their retries used up): list them, requeue them."""


@jobs.command("failed")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def jobs_failed(as_json: bool) -> None:
    """List failed jobs, newest first: queue, task, the ids it was given, when, and the type of
    its last error (never its message: it could quote what the job worked on)."""
    runtime = initialised_runtime(read_settings())
    try:
        failed = runtime.queue.failed()
    finally:
        runtime.close()
    rows = [
        {
            "id": job.id,
            "queue": job.queue,
            "task": job.task,
            "ids": list(job.ids),
            "failed_at": job.failed_at.isoformat() if job.failed_at else None,
            "error": job.error,
        }
        for job in failed
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no failed jobs")
    for job in failed:
        when = f"{job.failed_at:%Y-%m-%d %H:%M} UTC" if job.failed_at else "-"
        ids = ", ".join(str(value) for value in job.ids)
        click.echo(f"{job.id}  {job.queue}  {job.task}({ids})  {when}  {job.error}")


@jobs.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every failed job.")
def jobs_requeue(job_ids: tuple[str, ...], every: bool) -> None:
    """Send failed jobs back to their queues with fresh retries (audited)."""
    if bool(job_ids) == every:
        raise click.UsageError("name the jobs, or give --all")
    runtime = initialised_runtime(read_settings())
    try:
        wanted = [job.id for job in runtime.queue.failed()] if every else list(job_ids)
        requeued = []
        missing = []
        with runtime.session_factory() as session:
            audit = runtime.audit(session)
            for job_id in wanted:
                if runtime.queue.requeue(job_id):
                    requeued.append(job_id)
                    audit.record("job.requeued", actor=cli_actor(), subject=f"job:{job_id[:100]}")
                else:
                    missing.append(job_id)
            session.commit()
    finally:
        runtime.close()
    for job_id in requeued:
        click.echo(f"requeued {job_id}")
    for job_id in missing:
        click.echo(f"not a failed job: {job_id}", err=True)
    if missing:
        raise SystemExit(1)
