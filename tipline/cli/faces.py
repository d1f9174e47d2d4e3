"""``tipline face``: what a partner-facing web host needs (see ``TIPLINE_WEB_FACE``)."""

from __future__ import annotations

from pathlib import Path

import click

from crypto import CryptoError
from referrals.intake.services import (
    IntakeKeyMissing,
    IntakeKeyService,
    WebFormKeyMissing,
    WebFormKeyService,
)
from referrals.messages.portal_key import PortalKeyMissing, PortalKeyService
from tipline.cli.environment import initialised_runtime, read_settings
from tipline.config import Face, gnupg_home_too_long
from tipline.instance import export_partner_home


@click.group()
def face() -> None:
    """Web faces (TIPLINE_WEB_FACE): what a partner-facing web host needs."""


@face.command("export-partner")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
def face_export_partner(target: Path) -> None:
    """Write in TARGET the home of a partner-facing web host: a GnuPG home with the intake
    public key, the web-form key pair and the portal key pair (it reads the centre's messages
    to partners), and the secrets that face needs. Nothing in it decrypts a tip: not the intake
    secret key, its passphrase or the blind-index key."""
    target = target.absolute()
    if gnupg_home_too_long(target / "gnupg"):
        raise click.ClickException(f"{target} is too long a path for a GnuPG home: choose another")
    runtime = initialised_runtime(read_settings())
    try:
        with runtime.session_factory() as session:
            try:
                intake = IntakeKeyService(session, keyring=runtime.keyring, clock=runtime.clock)
                web_form = WebFormKeyService(
                    session, keyring=runtime.web_form_signer(), clock=runtime.clock
                )
                portal = PortalKeyService(
                    session, keyring=runtime.web_form_signer(), clock=runtime.clock
                )
                intake_fingerprint, web_form_fingerprint = intake.current(), web_form.current()
                portal_fingerprint = portal.current()
            except (IntakeKeyMissing, WebFormKeyMissing, PortalKeyMissing) as exc:
                raise click.ClickException(str(exc)) from None
        try:
            export_partner_home(
                runtime.settings,
                target,
                keyring=runtime.keyring,
                web_form_keyring=runtime.web_form_signer(),
                intake_fingerprint=intake_fingerprint,
                web_form_fingerprint=web_form_fingerprint,
                portal_fingerprint=portal_fingerprint,
            )
        except (FileExistsError, CryptoError) as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        runtime.close()
    click.echo(f"{target}: the home of a partner-facing web host (gnupg/, secrets/)")
    click.echo(
        "Copy it to that host over a secure channel and run the web server there with "
        f"TIPLINE_HOME set to it, TIPLINE_WEB_FACE={Face.PARTNER} and this host's "
        "TIPLINE_DATABASE_URL and TIPLINE_REDIS_URL."
    )
