"""Processing: a web-form tip is signed by the web-form key; an API tip never may be."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import update

from crypto import SignatureStatus
from referrals.intake import tasks
from referrals.intake.models import Tip, TipStatus, WebFormKey
from referrals.intake.processing import SIGNATURE_REASONS, WEB_FORM_SIGNER_REASON
from referrals.intake.receiving import TipReceiver
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tests.tipline.partner.conftest import Officer, sign_in_directly
from tipline.runtime import Runtime


def _receive(runtime: Runtime, agency: RegisteredAgency, body: bytes, user_id: int | None) -> str:
    with runtime.session_factory() as session:
        receipt = TipReceiver(session, queue=runtime.queue, clock=runtime.clock).receive(
            agency.id, body, submitted_by_user_id=user_id
        )
    return receipt.tip.id


def _processed(runtime: Runtime, tip_id: str) -> Tip:
    tasks.process_tip(runtime.job_context(), tip_id)
    with runtime.session_factory() as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
        return tip


def _process(runtime: Runtime, agency: RegisteredAgency, body: bytes, user_id: int | None) -> Tip:
    return _processed(runtime, _receive(runtime, agency, body, user_id))


def _signed_by_intake(runtime: Runtime, intake_keyring: IntakeKeyring) -> bytes:
    fingerprint = intake_keyring.fingerprint
    document = json.dumps(valid_tip()).encode()
    return runtime.keyring.encrypt(document, [fingerprint], sign_with=fingerprint).encode()


def _signed_by_web_form_key(runtime: Runtime, intake_keyring: IntakeKeyring) -> bytes:
    document = json.dumps(valid_tip()).encode()
    return (
        runtime.web_form_signer()
        .encrypt(
            document, [intake_keyring.fingerprint], sign_with=intake_keyring.web_form_fingerprint
        )
        .encode()
    )


@pytest.fixture
def web_officer(app: Flask, runtime: Runtime, agencies: dict[str, RegisteredAgency]) -> Officer:
    return sign_in_directly(
        app, runtime, email="o@a.example", role="partner", agency_id=agencies["agency-a"].id
    )


def test_an_api_tip_signed_with_the_intake_key_is_rejected(
    runtime: Runtime, intake_keyring: IntakeKeyring, agencies: dict[str, RegisteredAgency]
) -> None:
    tip = _process(runtime, agencies["agency-a"], _signed_by_intake(runtime, intake_keyring), None)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason == SIGNATURE_REASONS[SignatureStatus.UNKNOWN_SIGNER]


def test_an_api_tip_signed_with_the_web_form_key_is_rejected(
    runtime: Runtime, intake_keyring: IntakeKeyring, agencies: dict[str, RegisteredAgency]
) -> None:
    """Whoever holds the web-form key (a partner-facing host) cannot speak for an agency's
    systems: only a web-form tip, whose officer signed in, may carry that signature."""
    body = _signed_by_web_form_key(runtime, intake_keyring)
    tip = _process(runtime, agencies["agency-a"], body, None)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason == SIGNATURE_REASONS[SignatureStatus.UNKNOWN_SIGNER]


def test_a_web_form_tip_signed_with_the_web_form_key_is_accepted(
    runtime: Runtime,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
    web_officer: Officer,
) -> None:
    body = _signed_by_web_form_key(runtime, intake_keyring)
    tip = _process(runtime, agencies["agency-a"], body, web_officer.user_id)
    assert tip.status == TipStatus.IN_TRIAGE, tip.reason
    assert tip.signed_by == intake_keyring.web_form_fingerprint


def test_a_web_form_tip_signed_with_the_intake_key_is_rejected_once_the_web_form_key_exists(
    runtime: Runtime,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
    web_officer: Officer,
) -> None:
    body = _signed_by_intake(runtime, intake_keyring)
    tip = _process(runtime, agencies["agency-a"], body, web_officer.user_id)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason == WEB_FORM_SIGNER_REASON


def test_a_web_form_tip_stored_before_the_web_form_key_existed_still_processes(
    runtime: Runtime,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
    web_officer: Officer,
) -> None:
    """Sent through the web form before upgrading, when the form signed with the intake key,
    and processed after `tipline init` made the web-form key."""
    tip_id = _receive(
        runtime,
        agencies["agency-a"],
        _signed_by_intake(runtime, intake_keyring),
        web_officer.user_id,
    )
    with runtime.session_factory.begin() as session:
        session.execute(
            update(WebFormKey).values(created_at=runtime.clock.now() + timedelta(minutes=1))
        )
    tip = _processed(runtime, tip_id)
    assert tip.status == TipStatus.IN_TRIAGE, tip.reason
    assert tip.signed_by == intake_keyring.fingerprint


def test_a_web_form_key_signs_only_for_tips_that_arrived_before_it_was_retired(
    runtime: Runtime,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
    web_officer: Officer,
) -> None:
    a = agencies["agency-a"]
    before = _receive(
        runtime, a, _signed_by_web_form_key(runtime, intake_keyring), web_officer.user_id
    )
    after = _receive(
        runtime, a, _signed_by_web_form_key(runtime, intake_keyring), web_officer.user_id
    )
    with runtime.session_factory.begin() as session:
        retired = session.get(Tip, after)
        assert retired is not None
        session.execute(update(WebFormKey).values(retired_at=retired.received_at))
    assert _processed(runtime, before).status == TipStatus.IN_TRIAGE
    rejected = _processed(runtime, after)
    assert rejected.status == TipStatus.REJECTED
    assert rejected.reason == WEB_FORM_SIGNER_REASON


def test_a_web_form_tip_signed_by_any_other_key_is_rejected(
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
    web_officer: Officer,
) -> None:
    """Even the agency's own pinned key: the web path only ever signs with the web-form key."""
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer="agency-a")
    tip = _process(runtime, agencies["agency-a"], body, web_officer.user_id)
    assert tip.status == TipStatus.REJECTED
    assert tip.reason == WEB_FORM_SIGNER_REASON
