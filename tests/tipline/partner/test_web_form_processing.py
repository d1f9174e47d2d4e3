"""Processing: a web-form tip is signed by the intake key; an API tip never may be."""

from __future__ import annotations

import json

from flask import Flask

from crypto import SignatureStatus
from referrals.intake import tasks
from referrals.intake.models import Tip, TipStatus
from referrals.intake.processing import SIGNATURE_REASONS
from referrals.intake.receiving import TipReceiver
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tests.tipline.partner.conftest import sign_in_directly
from tipline.runtime import Runtime


def _process(runtime: Runtime, agency: RegisteredAgency, body: bytes, user_id: int | None) -> Tip:
    with runtime.session_factory() as session:
        receipt = TipReceiver(session, queue=runtime.queue, clock=runtime.clock).receive(
            agency.id, body, submitted_by_user_id=user_id
        )
    tasks.process_tip(runtime.job_context(), receipt.tip.id)
    with runtime.session_factory() as session:
        tip = session.get(Tip, receipt.tip.id)
        assert tip is not None
        return tip


def _signed_by_intake(runtime: Runtime, intake_keyring: IntakeKeyring) -> bytes:
    fingerprint = intake_keyring.fingerprint
    document = json.dumps(valid_tip()).encode()
    return runtime.keyring.encrypt(document, [fingerprint], sign_with=fingerprint).encode()


def test_an_api_tip_signed_with_the_intake_key_is_rejected(
    runtime: Runtime, intake_keyring: IntakeKeyring, agencies: dict[str, RegisteredAgency]
) -> None:
    tip = _process(runtime, agencies["agency-a"], _signed_by_intake(runtime, intake_keyring), None)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason == SIGNATURE_REASONS[SignatureStatus.UNKNOWN_SIGNER]


def test_a_web_form_tip_signed_with_the_intake_key_is_accepted(
    app: Flask,
    runtime: Runtime,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
) -> None:
    officer = sign_in_directly(
        app, runtime, email="o@a.example", role="partner", agency_id=agencies["agency-a"].id
    )
    body = _signed_by_intake(runtime, intake_keyring)
    tip = _process(runtime, agencies["agency-a"], body, officer.user_id)
    assert tip.status == TipStatus.IN_TRIAGE, tip.reason
    assert tip.signed_by == intake_keyring.fingerprint


def test_a_web_form_tip_signed_by_any_other_key_is_rejected(
    app: Flask,
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
) -> None:
    """Even the agency's own pinned key: the web path only ever signs with the intake key."""
    officer = sign_in_directly(
        app, runtime, email="o@a.example", role="partner", agency_id=agencies["agency-a"].id
    )
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    tip = _process(runtime, agencies["agency-a"], body, officer.user_id)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason == "the web-form tip is not signed by the centre's intake key"
