"""The ``tipline`` command: set up a home, run workers, serve the product, administer.

One module per group of commands (``agencies``, ``accounts``, ``tips``, …); each is
registered here, in one place.
"""

from __future__ import annotations

import sys

import click

from tipline.cli import (
    accounts,
    agencies,
    audit,
    demo,
    faces,
    instance,
    jobs,
    tips,
    triage,
    workers,
)
from tipline.config import ConfigError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Tipline: investigation tip intake and cross-border referrals.

    Settings come from TIPLINE_* environment variables (see the README); everything local lives
    in TIPLINE_HOME (default ./instance).
    """


for command in (
    instance.init,
    instance.intake_key,
    workers.worker,
    workers.sweep,
    workers.housekeeping,
    workers.probe,
    workers.serve,
    agencies.agency,
    tips.tip,
    triage.triage,
    jobs.jobs,
    audit.audit,
    accounts.team,
    accounts.unit,
    accounts.user,
    faces.face,
    demo.demo,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point: a bad setting is one line on stderr and exit status 2."""
    try:
        cli.main(prog_name="tipline", standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"tipline: {exc}", err=True)
        sys.exit(2)
