"""``tipline init`` and ``tipline intake-key``: the home, its secrets and the intake key."""

from __future__ import annotations

import click

from referrals.database import head_revision, schema_revision, upgrade_schema
from referrals.intake.agencies import AgencyService
from referrals.intake.services import (
    IntakeKeyMissing,
    IntakeKeyService,
    WebFormKeyMissing,
    WebFormKeyService,
)
from referrals.messages.portal_key import PortalKeyMissing, PortalKeyService
from tipline.cli.environment import (
    initialised_runtime,
    read_settings,
    refuse_on_a_partner_facing_host,
)
from tipline.instance import (
    SECRET_SIZES,
    WEB_FORM_KEY_PASSPHRASE,
    ensure_intake_passphrase,
    ensure_passphrase,
    ensure_secret,
    private_folder,
)
from tipline.runtime import Runtime


@click.command()
def init() -> None:
    """Create or upgrade everything under the home: schema, secrets, the intake key pair,
    the web-form and portal key pairs.

    Safe to run again: what exists is left as it is, and a second run changes nothing.
    """
    settings = read_settings()
    refuse_on_a_partner_facing_host(settings, "is not initialised")
    changes: list[str] = []
    private_folder(settings.home)
    for name in SECRET_SIZES:
        if ensure_secret(settings, name):
            changes.append(f"created secret {name}")
    if ensure_intake_passphrase(settings):
        changes.append("created secret intake_key_passphrase")
    if ensure_passphrase(settings, WEB_FORM_KEY_PASSPHRASE):
        changes.append(f"created secret {WEB_FORM_KEY_PASSPHRASE}")
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
        changes += _init_keys_for_all_hosts(runtime)
    finally:
        runtime.close(stop_gpg_agent=True)
    for change in changes:
        click.echo(change)
    click.echo(f"{settings.home}: " + ("initialised" if changes else "already up to date"))


def _init_keys_for_all_hosts(runtime: Runtime) -> list[str]:
    """``init``'s part for several hosts: the web-form and portal keys, and a copy in the
    database of each agency key pinned before keys were kept there (from this host's
    keyring)."""
    changes = []
    with runtime.session_factory() as session:
        service = WebFormKeyService(session, keyring=runtime.web_form_signer(), clock=runtime.clock)
        try:
            fingerprint, created = service.ensure()
        except WebFormKeyMissing as exc:
            raise click.ClickException(str(exc)) from None
        if created:
            changes.append(f"generated the web-form key {fingerprint}")
        # Under the web-form key's passphrase: both live on partner-facing hosts.
        portal = PortalKeyService(session, keyring=runtime.web_form_signer(), clock=runtime.clock)
        try:
            fingerprint, created = portal.ensure()
        except PortalKeyMissing as exc:
            raise click.ClickException(str(exc)) from None
        if created:
            changes.append(f"generated the portal key {fingerprint}")
        agencies = AgencyService(
            session, keyring=runtime.keyring, clock=runtime.clock, audit=runtime.audit(session)
        )
        stored, missing = agencies.store_missing_public_keys()
    changes += [f"stored agency key {fingerprint} in the database" for fingerprint in stored]
    for fingerprint in missing:
        click.echo(
            f"warning: agency key {fingerprint} is not stored in the database nor in this "
            "host's keyring: run `tipline init` on the host where it was pinned",
            err=True,
        )
    return changes


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
