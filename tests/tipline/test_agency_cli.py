"""`tipline agency ...`: registering partner agencies, their tokens and keys."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import select, update

from crypto import Keyring
from referrals.intake.models import AgencyKey
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys
from tests.support import tipline_env
from tipline.cli import cli
from tipline.config import Settings
from tipline.runtime import Runtime


@pytest.fixture
def tipline(settings: Settings, runtime: Runtime) -> CliRunner:
    return CliRunner(env=tipline_env(settings))


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def key_file(tmp_path: Path, partners: PartnerKeys) -> Path:
    path = tmp_path / "agency-a.asc"
    path.write_bytes(partners.public_key("agency-a"))
    return path


def test_add_prints_an_id_and_a_token_that_works_and_is_shown_once(
    tipline: CliRunner, key_file: Path, client: FlaskClient, partners: PartnerKeys
) -> None:
    added = run(
        tipline,
        "agency",
        "add",
        "--name",
        "NCA",
        "--country",
        "gb",
        "--key-file",
        str(key_file),
        "--json",
    )
    assert added.exit_code == 0, added.output
    answer = json.loads(added.output)
    assert set(answer) == {"id", "token"}
    headers = {"Authorization": f"Bearer {answer['token']}"}
    assert client.get("/api/v1/tips", headers=headers).status_code == 200

    listed = json.loads(run(tipline, "agency", "list", "--json").output)
    assert listed == [
        {
            "id": answer["id"],
            "name": "NCA",
            "country": "GB",
            "fingerprint": partners.fingerprints["agency-a"],
            "expires": None,
        }
    ]
    assert answer["token"] not in run(tipline, "agency", "list").output


def test_a_new_token_revokes_the_old_one(
    tipline: CliRunner, key_file: Path, client: FlaskClient
) -> None:
    old = json.loads(
        run(
            tipline,
            "agency",
            "add",
            "--name",
            "NCA",
            "--country",
            "GB",
            "--key-file",
            str(key_file),
            "--json",
        ).output
    )
    new = json.loads(run(tipline, "agency", "token", "NCA", "--json").output)
    assert new["id"] == old["id"] and new["token"] != old["token"]
    assert (
        client.get("/api/v1/tips", headers={"Authorization": f"Bearer {old['token']}"}).status_code
        == 401
    )
    assert (
        client.get("/api/v1/tips", headers={"Authorization": f"Bearer {new['token']}"}).status_code
        == 200
    )


def test_rotating_the_key_pins_the_new_one(
    tipline: CliRunner, key_file: Path, tmp_path: Path, partners: PartnerKeys
) -> None:
    run(tipline, "agency", "add", "--name", "NCA", "--country", "GB", "--key-file", str(key_file))
    new_key = tmp_path / "new.asc"
    new_key.write_bytes(partners.public_key("agency-b"))
    rotated = run(tipline, "agency", "key", "NCA", "--key-file", str(new_key))
    assert rotated.exit_code == 0, rotated.output
    assert partners.fingerprints["agency-b"] in rotated.output
    [row] = json.loads(run(tipline, "agency", "list", "--json").output)
    assert row["fingerprint"] == partners.fingerprints["agency-b"]
    again = run(tipline, "agency", "key", "NCA", "--key-file", str(new_key))
    assert again.exit_code == 1
    assert "already" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--country", "XX"], "not an ISO 3166-1 alpha-2 country code"),
        (["--country", "GBR"], "not an ISO 3166-1 alpha-2 country code"),
    ],
)
def test_add_refuses_a_bad_country(
    tipline: CliRunner, key_file: Path, args: list[str], message: str
) -> None:
    result = run(tipline, "agency", "add", "--name", "NCA", "--key-file", str(key_file), *args)
    assert result.exit_code == 1
    assert message in result.output
    assert json.loads(run(tipline, "agency", "list", "--json").output) == []


def test_add_refuses_a_key_that_is_not_a_public_key(tipline: CliRunner, tmp_path: Path) -> None:
    not_a_key = tmp_path / "note.txt"
    not_a_key.write_text("this is not a key")
    result = run(
        tipline, "agency", "add", "--name", "NCA", "--country", "GB", "--key-file", str(not_a_key)
    )
    assert result.exit_code == 1
    assert "key refused" in result.output
    assert "Traceback" not in result.output


def test_a_name_or_key_already_registered_is_refused(tipline: CliRunner, key_file: Path) -> None:
    run(tipline, "agency", "add", "--name", "NCA", "--country", "GB", "--key-file", str(key_file))
    same_name = run(
        tipline, "agency", "add", "--name", "NCA", "--country", "GB", "--key-file", str(key_file)
    )
    assert same_name.exit_code == 1 and "already registered" in same_name.output
    same_key = run(
        tipline, "agency", "add", "--name", "Other", "--country", "US", "--key-file", str(key_file)
    )
    assert same_key.exit_code == 1 and "already pinned" in same_key.output


def test_an_unknown_agency_is_named_in_the_error(tipline: CliRunner) -> None:
    result = run(tipline, "agency", "token", "Nobody")
    assert result.exit_code == 1
    assert "no agency 'Nobody'" in result.output


def test_agency_changes_are_audited_and_the_chain_verifies_until_tampered_with(
    tipline: CliRunner, key_file: Path, runtime: Runtime
) -> None:
    from sqlalchemy import select, update

    from referrals.audit.models import AuditRecord
    from tests.referrals.audit.cleanup import append_only_lifted

    run(tipline, "agency", "add", "--name", "NCA", "--country", "GB", "--key-file", str(key_file))
    run(tipline, "agency", "token", "NCA")
    with runtime.session_factory() as session:
        records = session.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
        assert [r.action for r in records] == ["agency.created", "agency.token_minted"]
        assert all(r.actor.startswith("cli:") for r in records)
        first_id = records[0].id
    intact = run(tipline, "audit", "verify")
    assert intact.exit_code == 0
    assert "audit log intact: 2 records" in intact.output

    with runtime.engine.begin() as connection, append_only_lifted(connection):
        connection.execute(
            update(AuditRecord).where(AuditRecord.id == first_id).values(actor="cli:someone-else")
        )
    broken = run(tipline, "audit", "verify")
    assert broken.exit_code == 1
    assert f"BROKEN at record {first_id}" in broken.output


def test_init_stores_the_keys_pinned_before_keys_were_stored_and_names_those_it_lacks(
    settings: Settings,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    gnupg_home: Path,
) -> None:
    """Upgrading: agencies added when keys lived only in the keyring of the host that ran
    `agency add`. That host's `tipline init` copies them into the database."""
    with runtime.session_factory.begin() as session:
        session.execute(update(AgencyKey).values(public_key=None))
    # This host's keyring: the centre's keys, and agency A's key (imported when it was added).
    for fingerprint, passphrase in (
        (intake_keyring.fingerprint, intake_keyring.passphrase),
        (intake_keyring.web_form_fingerprint, intake_keyring.web_form_passphrase),
        (intake_keyring.portal_fingerprint, intake_keyring.web_form_passphrase),
    ):
        source = Keyring(intake_keyring.home, passphrase=passphrase)
        Keyring(gnupg_home, passphrase=passphrase).import_secret_key(
            source.export_secret_key(fingerprint), fingerprint=fingerprint
        )
    Keyring(gnupg_home).import_partner_key(partners.public_key("agency-a"))
    a_key, b_key = partners.fingerprints["agency-a"], partners.fingerprints["agency-b"]
    runner = CliRunner(env=tipline_env(replace(settings, gnupg_home=gnupg_home)))

    first = run(runner, "init")
    assert first.exit_code == 0, first.output
    assert f"stored agency key {a_key} in the database" in first.stdout
    assert f"warning: agency key {b_key} is not stored" in first.stderr
    again = run(runner, "init")
    assert again.stdout.strip().endswith("already up to date")
    assert b_key in again.stderr
    with runtime.session_factory() as session:
        copies = dict(session.execute(select(AgencyKey.fingerprint, AgencyKey.public_key)).all())
    assert copies[b_key] is None
    assert Keyring(gnupg_home).inspect_partner_key(copies[a_key] or "").fingerprint == a_key
