"""``tipline init`` and ``tipline intake-key``: the home, its secrets and the intake key."""

from __future__ import annotations

import click

from referrals.database import head_revision, schema_revision, upgrade_schema
from referrals.intake.services import IntakeKeyMissing, IntakeKeyService
from tipline.cli.environment import initialised_runtime, read_settings
from tipline.instance import (
    SECRET_SIZES,
    ensure_intake_passphrase,
    ensure_secret,
    private_folder,
)
from tipline.runtime import Runtime


@click.command()
def init() -> None:
    """Create or upgrade everything under the home: schema, secrets, the intake key pair.

    Safe to run again: what exists is left as it is, and a second run changes nothing.
    """
    settings = read_settings()
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


@click.command("intake-key")
def intake_key() -> None:
    """Print the armored public intake key: what partners encrypt tips to."""
    runtime = initialised_runtime(read_settings())
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
