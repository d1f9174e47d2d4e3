"""A processed tip is admitted to triage in the same transaction: linked, scored, timed, routed;
and none of it reaches the partner."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.audit.models import AuditRecord
from referrals.intake import tasks
from referrals.intake.models import Tip, TipStatus
from referrals.intake.receiving import TipReceiver
from referrals.triage.models import TipLink
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tests.referrals.triage.fixtures import MakeTip
from tipline.runtime import Runtime


def send(
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agency: RegisteredAgency,
    document: dict[str, Any],
) -> Tip:
    body = partners.seal(document, recipient=intake_keyring.fingerprint, signer=agency.key_name)
    with runtime.session_factory() as session:
        tip_id = (
            TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
            .receive(agency.id, body)
            .tip.id
        )
    tasks.process_tip(runtime.job_context(), tip_id)
    with runtime.session_factory() as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
        return tip


def test_a_tip_is_scored_timed_routed_and_linked_across_agencies(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    make_team: Any,
) -> None:
    luzon = make_team("Luzon desk", "PH", ["central luzon"])
    make_team("Philippines desk", "PH")
    first = send(runtime, partners, intake_keyring, agencies["agency-a"], valid_tip())
    assert first.status == TipStatus.IN_TRIAGE
    assert first.priority == "P1"
    assert first.priority_reasons is not None
    assert "imminent danger reported (+60)" in first.priority_reasons
    assert "youngest victim aged 2 (+25)" in first.priority_reasons
    assert first.sla_due_at == first.processed_at + timedelta(hours=1)  # type: ignore[operator]
    assert first.team_id == luzon  # the region's team, not the whole country's
    assert first.rules_version == 1
    assert first.location_precision == "city"

    # Agency B knows the same facilitator's phone, written nationally, and nothing urgent.
    other = valid_tip(
        urgency={"imminent_danger": False, "ongoing_abuse": False, "live_streaming": False},
        location={"country": "PH"},
        victims=[],
        selectors=[{"type": "phone", "value": "0905-123-4567"}],
    )
    second = send(runtime, partners, intake_keyring, agencies["agency-b"], other)
    assert second.priority_reasons is not None
    assert "shares identifiers with 1 other tip (+10)" in second.priority_reasons
    assert second.team_id != luzon and second.team_id is not None  # the country's team
    with runtime.session_factory() as session:
        link = session.scalars(select(TipLink).where(TipLink.tip_id == second.id)).one()
        assert (link.earlier_tip_id, link.selector_type) == (first.id, "phone")
        audit = session.scalars(
            select(AuditRecord).where(AuditRecord.subject == f"tip:{second.id}")
        ).one()
        assert audit.details["linked_tips"] == 1


def test_a_tip_no_team_covers_is_left_for_onward_referral(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    make_team: Any,
) -> None:
    make_team("Visayas desk", "PH", ["Central Visayas"])
    make_team("Thailand desk", "TH")
    tip = send(runtime, partners, intake_keyring, agencies["agency-a"], valid_tip())
    assert tip.status == TipStatus.IN_TRIAGE
    assert tip.team_id is None


def test_a_bad_phone_number_is_a_warning_for_the_partner_not_a_rejection(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    client: FlaskClient,
) -> None:
    document = valid_tip()
    document["selectors"][1]["value"] = "12"
    tip = send(runtime, partners, intake_keyring, agencies["agency-a"], document)
    assert tip.status == TipStatus.IN_TRIAGE
    assert tip.unindexed_selectors == 1
    answer = client.get(f"/api/v1/tips/{tip.id}", headers=agencies["agency-a"].headers).get_json()
    assert answer["status"] == "in_triage"
    assert answer["warnings"] == [
        {"pointer": "/selectors/1/value", "message": "not a valid phone number"}
    ]


def test_a_partner_is_told_nothing_of_what_another_agency_reported(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    client: FlaskClient,
) -> None:
    a = agencies["agency-a"]
    alone = send(
        runtime,
        partners,
        intake_keyring,
        a,
        valid_tip(selectors=[{"type": "ip", "value": "198.51.100.7"}]),
    )
    send(runtime, partners, intake_keyring, agencies["agency-b"], valid_tip())
    matched = send(runtime, partners, intake_keyring, a, valid_tip())
    with runtime.session_factory() as session:
        assert session.scalars(select(TipLink).where(TipLink.tip_id == matched.id)).first()

    def seen(tip_id: str) -> dict[str, Any]:
        answer = client.get(f"/api/v1/tips/{tip_id}", headers=a.headers).get_json()
        return {k: v for k, v in answer.items() if k not in ("id", "tracking_number", "updated_at")}

    assert seen(matched.id) == seen(alone.id)
    page = client.get("/api/v1/tips", headers=a.headers).get_json()
    assert {tip["id"] for tip in page["tips"]} == {alone.id, matched.id}
    # Without the random parts (a tracking number may well contain "P1").
    listing = json.dumps(
        [
            {k: v for k, v in tip.items() if k not in ("id", "tracking_number", "updated_at")}
            for tip in page["tips"]
        ]
    )
    for word in ("priority", "link", "correlat", "team", "P1"):
        assert word not in listing


def test_a_second_delivery_adds_no_second_set_of_links(
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    make_tip: MakeTip,
) -> None:
    send(runtime, partners, intake_keyring, agencies["agency-b"], valid_tip())
    tip = send(runtime, partners, intake_keyring, agencies["agency-a"], valid_tip())
    tasks.process_tip(runtime.job_context(), tip.id)
    with runtime.session_factory() as session:
        rows = session.scalars(select(TipLink).where(TipLink.tip_id == tip.id)).all()
    assert len(rows) == 7  # one per shared value, once
