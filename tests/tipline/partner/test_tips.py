"""Following the agency's tips: a listing and a status page, for its own partners only."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import update

from referrals.intake.models import Tip, TipStatus
from referrals.intake.receiving import TipReceiver
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tests.tipline.partner.conftest import Officer, sign_in_directly
from tipline.partner import views
from tipline.runtime import Runtime


def api_tip(
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agency: RegisteredAgency,
    *,
    updated_at: datetime | None = None,
) -> Tip:
    body = partners.seal(valid_tip(), recipient=intake_keyring.fingerprint, signer=agency.key_name)
    with runtime.session_factory() as session:
        tip = (
            TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
            .receive(agency.id, body)
            .tip
        )
        if updated_at is not None:
            session.execute(update(Tip).where(Tip.id == tip.id).values(updated_at=updated_at))
            session.commit()
            tip.updated_at = updated_at
        return tip


def tracking_numbers(page: str) -> list[str]:
    return re.findall(r">(TL-[0-9A-Z]{5}-[0-9A-Z]{5})</a>", page)


def test_the_listing_shows_the_agencys_tips_newest_change_first_a_page_at_a_time(
    officer: Officer,
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    own = [
        api_tip(
            runtime,
            partners,
            intake_keyring,
            agencies["agency-a"],
            updated_at=start + timedelta(hours=hours),
        )
        for hours in (1, 3, 2)
    ]
    other = api_tip(runtime, partners, intake_keyring, agencies["agency-b"], updated_at=start)

    first = officer.client.get("/partner/tips")
    page = first.get_data(as_text=True)
    assert first.status_code == 200
    assert tracking_numbers(page) == [own[1].tracking_number, own[2].tracking_number]
    older = re.search(r'<a href="([^"]+)">Older tips</a>', page)
    assert older
    second = officer.client.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert tracking_numbers(second) == [own[0].tracking_number]
    assert "Older tips" not in second and "Most recent tips" in second
    assert other.tracking_number not in page + second
    assert "2026-11-01 11:00 UTC" in page and 'data-status="received">Received<' in page


def test_the_listing_says_so_when_there_is_nothing(officer: Officer) -> None:
    page = officer.client.get("/partner/tips").get_data(as_text=True)
    assert "has not sent any tips yet" in page


def test_a_page_link_that_was_not_given_out_is_a_clear_400(officer: Officer) -> None:
    answer = officer.client.get("/partner/tips?after=bm9wZQ")
    assert answer.status_code == 400


def test_the_status_page_shows_a_rejection_and_its_reason(
    officer: Officer,
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
) -> None:
    tip = api_tip(runtime, partners, intake_keyring, agencies["agency-a"])
    with runtime.session_factory.begin() as session:
        session.execute(
            update(Tip)
            .where(Tip.id == tip.id)
            .values(status=TipStatus.REJECTED, reason="the tip is not signed")
        )
    page = officer.client.get(f"/partner/tips/{tip.id}").get_data(as_text=True)
    assert 'data-status="rejected">Not accepted: see the reason' in page
    assert "the tip is not signed" in page and "Your tip is stored" not in page
    assert "the API" in page


def test_a_tip_quarantined_on_our_side_is_shown_as_held_without_the_fault(
    officer: Officer,
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
) -> None:
    tip = api_tip(runtime, partners, intake_keyring, agencies["agency-a"])
    with runtime.session_factory.begin() as session:
        session.execute(
            update(Tip)
            .where(Tip.id == tip.id)
            .values(status=TipStatus.QUARANTINED, attempts=6, fault="SecretKeyLocked: locked")
        )
    page = officer.client.get(f"/partner/tips/{tip.id}").get_data(as_text=True)
    listing = officer.client.get("/partner/tips").get_data(as_text=True)
    assert 'data-status="held">Held by the centre<' in listing
    assert 'data-status="held"' in page
    for shown in (page, listing):
        assert "quarantined" not in shown and "SecretKeyLocked" not in shown
    assert "Held by the centre after a fault on its side" in page
    assert "do not send it again" in page


def test_another_agencys_tip_is_answered_like_one_that_does_not_exist(
    officer: Officer,
    other_officer: Officer,
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agencies: dict[str, RegisteredAgency],
) -> None:
    theirs = api_tip(runtime, partners, intake_keyring, agencies["agency-b"])
    assert other_officer.client.get(f"/partner/tips/{theirs.id}").status_code == 200
    foreign = officer.client.get(f"/partner/tips/{theirs.id}", headers={"Accept": "text/html"})
    missing = officer.client.get(f"/partner/tips/{uuid.uuid4()}", headers={"Accept": "text/html"})
    assert foreign.status_code == missing.status_code == 404
    assert foreign.get_data() == missing.get_data()
    assert theirs.tracking_number not in foreign.get_data(as_text=True)


@pytest.mark.parametrize("role", ["analyst", "lead", "admin"])
def test_staff_cannot_reach_the_partner_pages(app: Flask, runtime: Runtime, role: str) -> None:
    staff = sign_in_directly(
        app, runtime, email=f"{role}@centre.example", role=role, agency_id=None
    )
    for path in ("/partner/tips", "/partner/tips/new", f"/partner/tips/{uuid.uuid4()}"):
        assert staff.client.get(path).status_code == 403, path


def test_signed_out_visitors_are_sent_to_sign_in(app: Flask) -> None:
    answer = app.test_client().get("/partner/tips/new")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login")


def test_a_partner_sees_the_partner_pages_in_the_navigation(officer: Officer) -> None:
    page = officer.client.get("/").get_data(as_text=True)
    assert 'href="/partner/tips"' in page and 'href="/partner/tips/new"' in page
