"""Held tips in the web: admins see what failed on our side, never content, and send the tip
back to processing once the fault is fixed."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from referrals.intake.models import Tip, TipStatus
from referrals.intake.receiving import TipReceiver
from referrals.jobs import INTAKE_QUEUE
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import NARRATIVE_MARK, SELECTOR_MARKS, PartnerKeys, valid_tip
from tests.tipline.admin.people import (
    Person,
    audit_records,
    csrf,
    enrolled,
    signed_in_client,
)
from tipline.runtime import Runtime

FAULT = "SecretKeyLocked: the intake key could not be unlocked (check its passphrase)"


@pytest.fixture
def admin(runtime: Runtime) -> Person:
    return enrolled(runtime, "root@centre.example", "admin")


@pytest.fixture
def admin_client(app: Flask, runtime: Runtime, admin: Person) -> FlaskClient:
    return signed_in_client(app, runtime, admin)


def held_tip(
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agency: RegisteredAgency,
) -> Tip:
    """A tip as processing leaves it after six faults on our side."""
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer=agency.key_name)
    with runtime.session_factory() as session:
        receiver = TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
        tip = receiver.receive(agency.id, body).tip
        session.execute(
            update(Tip)
            .where(Tip.id == tip.id)
            .values(
                status=TipStatus.QUARANTINED,
                attempts=6,
                fault=FAULT,
                quarantined_at=runtime.clock.now(),
            )
        )
        session.commit()
    runtime.queue.queue(INTAKE_QUEUE).empty()  # the receipt's job is long gone
    return tip


def test_an_admin_sees_held_tips_with_their_fault_and_nothing_of_their_content(
    admin_client: FlaskClient,
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
) -> None:
    tip = held_tip(runtime, partners, intake_keyring, agencies["agency-a"])
    page = admin_client.get("/admin/held-tips").get_data(as_text=True)

    assert tip.tracking_number in page
    assert "Agency A" in page
    assert "SecretKeyLocked: the intake key could not be unlocked" in page
    assert "<td>6</td>" in page
    for mark in (NARRATIVE_MARK, *SELECTOR_MARKS):
        assert mark not in page


def test_an_admin_sends_a_held_tip_back_to_processing_once(
    admin_client: FlaskClient,
    admin: Person,
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
) -> None:
    tip = held_tip(runtime, partners, intake_keyring, agencies["agency-a"])
    token = csrf(admin_client.get("/admin/held-tips").get_data(as_text=True))

    answer = admin_client.post(f"/admin/held-tips/{tip.id}/retry", data={"csrf_token": token})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/held-tips"
    with runtime.session_factory() as session:
        again = session.get(Tip, tip.id)
        assert again is not None
        assert (again.status, again.attempts, again.fault) == (TipStatus.RECEIVED, 0, None)
    assert runtime.queue.queue(INTAKE_QUEUE).count == 1  # queued for processing
    [record] = audit_records(runtime, "tip.retried")
    assert (record.actor, record.subject) == (f"user:{admin.id}", f"tip:{tip.id}")
    listing = admin_client.get("/admin/held-tips").get_data(as_text=True)
    assert "The tip is queued again" in listing and tip.tracking_number not in listing

    # A second click (another tab, a colleague) changes nothing and says why.
    answer = admin_client.post(f"/admin/held-tips/{tip.id}/retry", data={"csrf_token": token})
    assert "no longer held" in admin_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert len(audit_records(runtime, "tip.retried")) == 1


def test_every_held_tip_can_be_sent_back_at_once(
    admin_client: FlaskClient,
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
) -> None:
    held = [
        held_tip(runtime, partners, intake_keyring, agencies[name])
        for name in ("agency-a", "agency-b")
    ]
    token = csrf(admin_client.get("/admin/held-tips").get_data(as_text=True))
    answer = admin_client.post("/admin/held-tips/retry-all", data={"csrf_token": token})
    page = admin_client.get(answer.headers["Location"]).get_data(as_text=True)

    assert "2 held tip(s) queued again" in page and "No tip is held." in page
    with runtime.session_factory() as session:
        assert {session.get(Tip, tip.id).status for tip in held} == {TipStatus.RECEIVED}  # type: ignore[union-attr]
