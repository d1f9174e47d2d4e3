"""The partner API as documented: its OpenAPI description, and the worked example of the README
(docs/examples/submit-tip.sh: only gpg and curl) run against a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from sqlalchemy import select

from referrals.accounts.models import User
from referrals.feedback.services import FeedbackDesk
from referrals.intake.models import Tip
from referrals.triage.desk import TriageDesk
from tests.partners import FIXTURES, PartnerKeys
from tests.support import PATIENCE, add_agency, free_port, run_tipline, wait_for_worker
from tipline.config import Settings
from tipline.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "examples" / "submit-tip.sh"
FEEDBACK_SCRIPT = ROOT / "docs" / "examples" / "fetch-feedback.sh"
TIP_SCHEMA = ROOT / "referrals" / "intake" / "tip.schema.json"


def test_the_served_openapi_description_is_valid_openapi_3_1(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    assert spec["servers"] == [{"url": "/api/v1", "description": "This server."}]
    assert set(spec["paths"]) == {
        "/tips",
        "/tips/{id}",
        "/tips/{id}/attachments",
        "/tips/{id}/messages",
        "/tips/{id}/messages/{message_id}",
        "/messages",
        "/feedback",
    }


def _rewrite_refs(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                "#/components/schemas/" + names[value.removeprefix("#/$defs/")]
                if key == "$ref"
                else _rewrite_refs(value, names)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(value, names) for value in node]
    return node


def test_the_openapi_tip_document_is_the_published_json_schema(client: FlaskClient) -> None:
    """components.schemas.TipDocument is tip.schema.json with its $defs moved alongside."""
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    published = json.loads(TIP_SCHEMA.read_text())
    names = {
        "text": "TipText",
        "line": "TipLine",
        "timestamp": "TipTimestamp",
        "selector": "TipSelector",
        "file": "TipFile",
    }
    assert set(published["$defs"]) == set(names)
    expected = _rewrite_refs(
        {k: v for k, v in published.items() if k not in ("$schema", "$id", "$defs")}, names
    )
    document = {k: v for k, v in schemas["TipDocument"].items() if k != "description"}
    assert document == {k: v for k, v in expected.items() if k != "description"}
    for name, definition in published["$defs"].items():
        assert schemas[names[name]] == _rewrite_refs(definition, names)


@pytest.fixture
def partner() -> Iterator[PartnerKeys]:
    """The partner agency's own GnuPG home (on a short /tmp path), agent stopped afterwards."""
    keys = PartnerKeys()
    yield keys
    keys.close()


def _fingerprint_of(keys: PartnerKeys, armored: bytes) -> str:
    listing = keys.gpg("--with-colons", "--import-options", "show-only", "--import", stdin=armored)
    return next(line.split(":")[9] for line in listing.decode().splitlines() if line[:4] == "fpr:")


@pytest.mark.slow
def test_the_documented_worked_example_gets_a_tip_into_triage(
    home_env: tuple[Path, dict[str, str]], partner: PartnerKeys, tmp_path: Path
) -> None:
    _home, env = home_env
    # The centre: initialise, publish the intake key.
    init = run_tipline("init", env=env)
    assert init.returncode == 0, init.stderr
    exported = run_tipline("intake-key", env=env)
    assert exported.returncode == 0, exported.stderr
    intake_key = exported.stdout.encode()

    # The partner: its own key; imports the intake key and, having checked the fingerprint
    # out of band, certifies it locally, so plain gpg encrypts to it without --trust-model.
    partner_fpr = partner.generate("eca")
    intake_fpr = _fingerprint_of(partner, intake_key)
    partner.trust_recipient(intake_key)
    partner.gpg("--quick-lsign-key", intake_fpr)
    key_file = tmp_path / "partner.asc"
    key_file.write_bytes(partner.public_key("eca"))

    # The centre registers the agency and hands over its token.
    token = str(add_agency(env, key_file)["token"])

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a photo" * 100)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tipline", "serve", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_worker(port)
        script_env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
        script_env.update(
            TIPLINE_URL=f"http://127.0.0.1:{port}",
            TIPLINE_TOKEN=token,
            PARTNER_FPR=partner_fpr,
            INTAKE_FPR=intake_fpr,
            GNUPGHOME=str(partner.home),
            TIP_FILE=str(FIXTURES / "tip-valid.json"),
        )

        def run_example(*attachments: Path) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["bash", str(SCRIPT), *map(str, attachments)],  # noqa: S607
                env=script_env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=PATIENCE,
                check=False,
            )

        first = run_example(photo)
        assert first.returncode == 0, first.stderr
        final = json.loads(first.stdout.strip().splitlines()[-1])
        assert final["status"] == "in_triage", final
        assert final["reason"] is None
        assert final["tracking_number"].startswith("TL-")
        assert "attached" in first.stderr and '"sha256"' in first.stderr
        assert token not in first.stdout + first.stderr

        # Sent again, the tip's external_reference (the Idempotency-Key) finds the first one.
        again = run_example()
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout.strip().splitlines()[-1])["id"] == final["id"]

        # The centre takes it on and a lead releases feedback; the second example fetches it,
        # checks the intake key signed it, saves it, and next time fetches only what is new.
        release_feedback(env, str(final["id"]), "Operation conducted; prosecution under way.")

        def fetch_feedback() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["bash", str(FEEDBACK_SCRIPT)],  # noqa: S607
                env=script_env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=PATIENCE,
                check=False,
            )

        fetched = fetch_feedback()
        assert fetched.returncode == 0, fetched.stderr
        [line] = fetched.stdout.splitlines()
        number, tips, stage, text = line.split("\t")
        assert (tips, stage, text) == (
            final["tracking_number"],
            "accepted",
            "Operation conducted; prosecution under way.",
        )
        saved = json.loads((tmp_path / "feedback" / f"feedback-{number}.json").read_text())
        assert saved["schema"] == "tipline.feedback/1"
        assert fetch_feedback().stdout == ""  # nothing new
        assert token not in fetched.stdout + fetched.stderr

        # A wrong token is an HTTP error: the script stops with curl's status and the answer.
        script_env["TIPLINE_TOKEN"] = "not-a-token"
        refused = run_example()
        assert refused.returncode == 22, refused.stderr
        assert '"unauthorized"' in refused.stderr
        assert fetch_feedback().returncode == 22
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=PATIENCE)
    assert server.returncode == 0, output
    assert "Traceback" not in output


def release_feedback(env: dict[str, str], tip_id: str, text: str) -> None:
    """A lead of the centre takes the tip on and releases feedback to its agency (through the
    services, on the centre's own home)."""
    team = run_tipline("team", "add", "--name", "Manila", "--country", "PH", env=env)
    assert team.returncode == 0, team.stderr
    added = run_tipline("user", "add", "--email", "lead@centre.example", "--role", "lead",
                        "--team", "Manila", "--json", env=env)  # fmt: skip
    assert added.returncode == 0, added.stderr
    runtime = Runtime.build(Settings.from_environment(env))
    try:
        with runtime.session_factory() as session:
            lead = session.get(User, int(json.loads(added.stdout)["id"]))
            assert lead is not None
            referral = TriageDesk(
                session, audit=runtime.audit(session), clock=runtime.clock
            ).accept(lead, tip_id, address=None)
            agency_id = session.scalars(select(Tip.agency_id).where(Tip.id == tip_id)).one()
            desk = FeedbackDesk(
                session, audit=runtime.audit(session), clock=runtime.clock, keyring=runtime.keyring
            )
            shown = desk.draft(lead, referral.id, agency_id, text, include_outcome=False)
            desk.release(lead, referral.id, agency_id, text, include_outcome=False,
                         version=shown.version, address=None)  # fmt: skip
    finally:
        runtime.close()
