"""What every command needs: settings from the environment, a runtime on an initialised home,
and who is running it (for the audit log)."""

from __future__ import annotations

import getpass

import click

from referrals.database import head_revision, schema_revision
from tipline.config import Face, Settings
from tipline.runtime import Runtime


def read_settings() -> Settings:
    """The settings from the ``TIPLINE_*`` variables (a bad one stops the command in ``main``)."""
    return Settings.from_environment()


def refuse_on_a_partner_facing_host(settings: Settings, what: str) -> None:
    """Stop a command that needs keys a partner-facing host must not hold, saying why.

    Its home holds nothing that decrypts tips, by design: say so rather than fail (or, for
    init, write secrets of its own) on a missing passphrase.
    """
    if settings.web_face == Face.PARTNER:
        raise click.ClickException(
            f"a partner-facing host (TIPLINE_WEB_FACE=partner) {what}: its home is made by "
            "`tipline face export-partner` on a full host"
        )


def initialised_runtime(settings: Settings, *, face: Face = Face.ALL) -> Runtime:
    """A runtime on a database at the schema this code needs; otherwise say what to run."""
    runtime = Runtime.build(settings, face=face)
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
