"""What every command needs: settings from the environment, a runtime on an initialised home,
and who is running it (for the audit log)."""

from __future__ import annotations

import getpass

import click

from referrals.database import head_revision, schema_revision
from tipline.config import Settings
from tipline.runtime import Runtime


def read_settings() -> Settings:
    """The settings from the ``TIPLINE_*`` variables (a bad one stops the command in ``main``)."""
    return Settings.from_environment()


def initialised_runtime(settings: Settings) -> Runtime:
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


def cli_actor() -> str:
    """Who ran the command, as the operating system knows them: the audit log's "who"."""
    return f"cli:{getpass.getuser()}"
