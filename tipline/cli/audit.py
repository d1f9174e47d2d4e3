"""``tipline audit``: checking the audit log."""

from __future__ import annotations

import sys

import click

from tipline.cli.environment import initialised_runtime, read_settings


@click.group()
def audit() -> None:
    """The audit log: check that nothing in it was altered or removed."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain from the first record to the last.

    Exits 0 if intact (printing the last record's id and hash: keep them elsewhere to detect
    records cut off the end), 1 naming the first broken record otherwise.
    """
    runtime = initialised_runtime(read_settings())
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
