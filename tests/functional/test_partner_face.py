"""A partner-facing host built with `tipline face export-partner`: it takes tips by API and web
form, a worker on a full host processes them, and nothing on it can read them."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from crypto import KeyNotFound
from referrals.accounts.models import User
from referrals.intake.models import Tip, TipCiphertext, TipStatus
from referrals.messages.services import Correspondence
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tests.support import tipline_env
from tests.tipline.admin.people import add_team, enrolled
from tests.tipline.partner.conftest import form_data, sign_in_directly
from tipline import create_app
from tipline.cli import cli
from tipline.config import Face, Settings
from tipline.instance import export_partner_home
from tipline.runtime import Runtime


def gpg(home: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", *args],  # noqa: S607
        input=stdin,
        capture_output=True,
        check=False,
        env=dict(os.environ, LC_ALL="C", LANGUAGE="C"),
    )


def fingerprints(home: Path, *, secret: bool) -> set[str]:
    listing = gpg(home, "--with-colons", "--list-secret-keys" if secret else "--list-keys")
    lines = listing.stdout.decode().splitlines()
    primary = "sec:" if secret else "pub:"
    return {
        line.split(":")[9]
        for previous, line in zip(lines, lines[1:], strict=False)
        if previous.startswith(primary) and line.startswith("fpr:")
    }


@pytest.fixture
def partner_home() -> Iterator[Path]:
    """Where the partner-facing host's home is written (a short path: gpg-agent's socket)."""
    parent = Path(tempfile.mkdtemp(prefix="tl-ph-", dir="/tmp"))
    yield parent / "home"
    subprocess.run(
        ["gpgconf", "--homedir", str(parent / "home" / "gnupg"), "--kill", "gpg-agent"],  # noqa: S607
        check=False,
        capture_output=True,
    )
    shutil.rmtree(parent, ignore_errors=True)


def test_a_partner_facing_host_takes_tips_that_only_a_full_host_can_read(
    settings: Settings,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    partner_home: Path,
) -> None:
    exported = CliRunner(env=tipline_env(settings)).invoke(
        cli, ["face", "export-partner", str(partner_home)], catch_exceptions=False
    )
    assert exported.exit_code == 0, exported.output
    secrets = partner_home / "secrets"
    assert {path.name for path in secrets.iterdir()} == {
        "audit_key",
        "secret_box_key",
        "web_form_key_passphrase",
        "flask_secret_key",
    }
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in secrets.iterdir())
    assert (secrets / "flask_secret_key").read_bytes() != (
        settings.secrets_dir / "flask_secret_key"
    ).read_bytes()
    gnupg_home = partner_home / "gnupg"
    assert fingerprints(gnupg_home, secret=True) == {
        intake_keyring.web_form_fingerprint,
        intake_keyring.portal_fingerprint,
    }
    assert fingerprints(gnupg_home, secret=False) == {
        intake_keyring.fingerprint,
        intake_keyring.web_form_fingerprint,
        intake_keyring.portal_fingerprint,
    }

    partner_settings = Settings(
        home=partner_home,
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        gnupg_home=gnupg_home,
        web_face=Face.PARTNER,
    )
    app = create_app(partner_settings)
    app.config["TESTING"] = True
    try:
        a = agencies["agency-a"]
        body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
        by_api = app.test_client().post(
            "/api/v1/tips", data=body, content_type="application/pgp-encrypted", headers=a.headers
        )
        assert by_api.status_code == 202, by_api.get_data(as_text=True)
        officer = sign_in_directly(
            app, runtime, email="officer@agency-a.example", role="partner", agency_id=a.id
        )
        page = officer.client.get("/partner/tips/new").get_data(as_text=True)
        by_form = officer.client.post("/partner/tips/new", data=form_data(page))
        assert by_form.status_code == 302, by_form.get_data(as_text=True)
    finally:
        app.extensions["tipline"].close(stop_gpg_agent=True)

    # A worker on a full host (this test's home) processes both.
    runtime.queue.worker(runtime.job_context()).work(burst=True)
    with runtime.session_factory() as session:
        tips = {tip.submitted_by_user_id: tip for tip in session.scalars(select(Tip))}
        ciphertexts = list(session.scalars(select(TipCiphertext.armored)))
    assert {tip.status for tip in tips.values()} == {TipStatus.IN_TRIAGE}
    assert tips[None].signed_by == partners.fingerprints["agency-a"]
    assert tips[officer.user_id].signed_by == intake_keyring.web_form_fingerprint

    # The partner-facing host's GnuPG home cannot open what it stored.
    for armored in ciphertexts:
        opened = gpg(gnupg_home, "--decrypt", stdin=armored)
        assert opened.returncode != 0
        assert b"No secret key" in opened.stderr
        assert b"little ones" not in opened.stdout

    # The centre asks the agency about its tip (on a staff host); the partner-facing host
    # shows the officer the question, opened with the portal key.
    add_team(runtime, "Manila", "PH")
    analyst = enrolled(runtime, "ana@centre.example", "analyst", team="Manila")
    question = "Which platform did the second account use?"
    with runtime.session_factory() as session:
        writer, about = session.get(User, analyst.id), session.get(Tip, tips[None].id)
        assert writer is not None and about is not None
        Correspondence(
            session, audit=runtime.audit(session), clock=runtime.clock, keyring=runtime.keyring
        ).ask(writer, about, question, address=None)
    app = create_app(partner_settings)
    app.config["TESTING"] = True
    try:
        reader = sign_in_directly(
            app, runtime, email="reader@agency-a.example", role="partner", agency_id=a.id
        )
        page = reader.client.get(f"/partner/tips/{about.id}").get_data(as_text=True)
        assert question in page
    finally:
        app.extensions["tipline"].close(stop_gpg_agent=True)


def test_export_partner_never_writes_over_a_folder_in_use(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    (target / "secrets").mkdir(parents=True)
    result = CliRunner(env=tipline_env(settings)).invoke(
        cli, ["face", "export-partner", str(target)]
    )
    assert result.exit_code == 1
    assert "is not empty" in result.output
    assert [path.name for path in target.iterdir()] == ["secrets"]
    assert list((target / "secrets").iterdir()) == []


def test_a_partner_home_that_cannot_be_completed_is_not_left_half_written(
    settings: Settings, runtime: Runtime, intake_keyring: IntakeKeyring, partner_home: Path
) -> None:
    with pytest.raises(KeyNotFound):
        export_partner_home(
            settings,
            partner_home,
            keyring=runtime.keyring,
            web_form_keyring=runtime.web_form_signer(),
            intake_fingerprint=intake_keyring.fingerprint,
            web_form_fingerprint="0" * 40,  # a key this host does not have
            portal_fingerprint=intake_keyring.portal_fingerprint,
        )
    assert list(partner_home.iterdir()) == []
