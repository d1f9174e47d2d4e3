"""TIPLINE_WEB_FACE: what a partner-facing and a staff-facing web process serve, whom they
let sign in, and what a partner-facing one can run without."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from crypto import SecretKeyLocked
from referrals.accounts.models import User
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import valid_tip
from tests.tipline.admin.people import (
    PASSWORD,
    Person,
    audit_records,
    csrf,
    enrolled,
    signed_in_client,
)
from tipline import create_app
from tipline.cli import cli
from tipline.config import ConfigError, Face, Settings
from tipline.instance import BLIND_INDEX_KEY, INTAKE_KEY_PASSPHRASE
from tipline.runtime import Runtime

FaceApp = Callable[[Face], Flask]
BLUEPRINTS = {
    Face.PARTNER: {"static", "health", "auth", "home", "partner", "api", "openapi"},
    Face.STAFF: {
        "static",
        "health",
        "auth",
        "home",
        "admin",
        "audit_log",
        "desk",
        "casework",
        "feedback",
        "handling",
        "onward",
        "operations",
        "dashboard",
        "aftercare",
    },
}


@pytest.fixture
def face_app(settings: Settings, runtime: Runtime) -> Iterator[FaceApp]:
    """Makes the web app of a face, on the test database and Redis and the test home."""
    built: list[Runtime] = []

    def make(face: Face) -> Flask:
        face_runtime = Runtime.build(
            replace(settings, web_face=face), face=face, password_hashing=runtime.password_hashing
        )
        built.append(face_runtime)
        app = create_app(runtime=face_runtime)
        app.config.update(TESTING=True, TIPLINE_SIGN_IN_RATE_LIMIT="1000/minute")
        return app

    yield make
    for face_runtime in built:
        face_runtime.close()


def password_step(client: FlaskClient, email: str, password: str = PASSWORD) -> str | None:
    """The password step of signing in: where it leads (None when it shows the form again)."""
    page = client.get("/login").get_data(as_text=True)
    answer = client.post(
        "/login", data={"csrf_token": csrf(page), "email": email, "password": password}
    )
    if answer.status_code == 302:
        return answer.headers["Location"]
    assert answer.status_code == 200
    assert "do not match an account that can sign in" in answer.get_data(as_text=True)
    return None


def test_each_face_serves_only_its_own_pages(face_app: FaceApp) -> None:
    served = {}
    for face in Face:
        app = face_app(face)
        served[face] = {rule.endpoint.split(".")[0] for rule in app.url_map.iter_rules()}
    assert served[Face.PARTNER] == BLUEPRINTS[Face.PARTNER]
    assert served[Face.STAFF] == BLUEPRINTS[Face.STAFF]
    assert served[Face.ALL] == BLUEPRINTS[Face.PARTNER] | BLUEPRINTS[Face.STAFF]


def test_a_face_answers_another_faces_addresses_with_not_found(face_app: FaceApp) -> None:
    clients = {face: face_app(face).test_client() for face in Face}
    staff_paths = ("/admin/users", "/audit")
    partner_paths = ("/api/v1/tips", "/api/v1/openapi.json", "/partner/tips")
    for face, paths in ((Face.PARTNER, staff_paths), (Face.STAFF, partner_paths)):
        for path in paths:
            assert clients[Face.ALL].get(path).status_code != 404, path
            assert clients[face].get(path).status_code == 404, (face, path)
    for client in clients.values():
        assert client.get("/healthz").status_code == 200
        assert client.get("/login").status_code == 200


def test_staff_cannot_sign_in_on_the_partner_face_nor_partners_on_the_staff_face(
    face_app: FaceApp, runtime: Runtime, agencies: dict[str, RegisteredAgency]
) -> None:
    analyst = enrolled(runtime, "ana@centre.example", "analyst")
    officer = enrolled(
        runtime, "officer@agency-a.example", "partner", agency_id=agencies["agency-a"].id
    )
    partner, staff = face_app(Face.PARTNER).test_client(), face_app(Face.STAFF).test_client()

    assert password_step(partner, analyst.email) is None
    assert password_step(staff, officer.email) is None
    # The same passwords lead on to the code step where each belongs.
    assert password_step(staff, analyst.email) == "/login/code"
    assert password_step(partner, officer.email) == "/login/code"

    refused = audit_records(runtime, "login.failed")
    assert {(r.subject, (r.details or {}).get("reason")) for r in refused} == {
        (f"user:{analyst.id}", "not served here"),
        (f"user:{officer.id}", "not served here"),
    }


def test_the_partner_face_can_neither_test_nor_lock_out_a_staff_password(
    face_app: FaceApp, runtime: Runtime
) -> None:
    admin = enrolled(runtime, "root@centre.example", "admin")
    partner = face_app(Face.PARTNER).test_client()
    for _ in range(6):  # more wrong passwords than the lockout allows
        assert password_step(partner, admin.email, "wrong password, long enough") is None
    with runtime.session_factory() as session:
        user = session.scalar(select(User).where(User.id == admin.id))
        assert user is not None
        assert (user.failed_logins, user.locked_until) == (0, None)
    assert password_step(face_app(Face.STAFF).test_client(), admin.email) == "/login/code"


def test_a_session_of_another_face_counts_as_nobody_signed_in(
    face_app: FaceApp, runtime: Runtime, agencies: dict[str, RegisteredAgency]
) -> None:
    people: dict[Face, Person] = {
        Face.STAFF: enrolled(runtime, "lead@centre.example", "lead"),
        Face.PARTNER: enrolled(
            runtime, "officer@agency-a.example", "partner", agency_id=agencies["agency-a"].id
        ),
    }
    for face, other in ((Face.PARTNER, Face.STAFF), (Face.STAFF, Face.PARTNER)):
        app = face_app(face)
        home = signed_in_client(app, runtime, people[other]).get("/")
        assert home.status_code == 302 and home.headers["Location"].startswith("/login")
        assert signed_in_client(app, runtime, people[face]).get("/").status_code == 200


def test_the_partner_face_runs_without_the_keys_that_read_tips(
    face_app: FaceApp,
    settings: Settings,
    runtime: Runtime,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
) -> None:
    for name in (INTAKE_KEY_PASSPHRASE, BLIND_INDEX_KEY):
        (settings.secrets_dir / name).unlink()
    with pytest.raises(ConfigError, match=INTAKE_KEY_PASSPHRASE):
        face_app(Face.STAFF)

    app = face_app(Face.PARTNER)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    a = agencies["agency-a"]
    body = runtime.web_form_signer().encrypt(
        json.dumps(valid_tip()).encode(), [intake_keyring.fingerprint]
    )
    sent = client.post(
        "/api/v1/tips", data=body, content_type="application/pgp-encrypted", headers=a.headers
    )
    assert sent.status_code == 202, sent.get_data(as_text=True)
    partner_runtime: Runtime = app.extensions["tipline"]
    assert partner_runtime.blind_index is None
    with pytest.raises(RuntimeError, match="runs no jobs"):
        partner_runtime.job_context()
    # Even on a GnuPG home that holds the intake secret key (this test's), it cannot decrypt.
    with pytest.raises(SecretKeyLocked):
        partner_runtime.keyring.decrypt_and_verify(body)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["serve"], "runs no job workers: use --workers 0"),
        (["worker", "--burst"], "runs no job workers (they decrypt tips)"),
        (["init"], "is not initialised"),
    ],
)
def test_a_partner_facing_host_refuses_what_needs_the_keys_it_must_not_hold(
    tmp_path: Path, command: list[str], message: str
) -> None:
    """Workers decrypt tips and `init` would write secrets a partner-facing host must not
    have: each says so, and leaves the home as it was."""
    home = tmp_path / "home"
    runner = CliRunner(env={"TIPLINE_HOME": str(home), "TIPLINE_WEB_FACE": "partner"})
    result = runner.invoke(cli, command)
    assert result.exit_code == 1
    assert message in result.output and "tipline face export-partner" in result.output
    assert not home.exists()
