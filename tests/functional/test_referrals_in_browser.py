"""A lead's path through a referral in a real browser (Chromium, the real stylesheet, no
script): open the team's referral, start the investigation with a note, hand it to a unit;
the unit's officer finds it in their own list and accepts it with their reference."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from sqlalchemy import select

from referrals.accounts.models import User
from referrals.triage.desk import TriageDesk
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.functional.conftest import LiveServer
from tests.functional.test_desk_in_browser import _send, _sign_in
from tests.partners import PartnerKeys
from tests.tipline.admin.people import add_team, add_unit, enrolled
from tipline.runtime import Runtime

if TYPE_CHECKING:
    from playwright import sync_api


def test_a_lead_hands_a_referral_to_a_unit_and_its_officer_accepts_it(
    browser: sync_api.Browser,
    live: LiveServer,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    add_team(runtime, "Manila", "PH")
    add_unit(runtime, "Luzon child protection unit")
    add_unit(runtime, "Cebu cybercrime unit")
    analyst = enrolled(runtime, "ana@centre.example", "analyst", team="Manila")
    lead = enrolled(runtime, "lea@centre.example", "lead", team="Manila")
    officer = enrolled(runtime, "oli@unit.example", "officer", unit="Luzon child protection unit")
    tip = _send(runtime, partners, intake_keyring, agencies["agency-a"])
    with runtime.session_factory() as session:
        person = session.scalars(select(User).where(User.id == analyst.id)).one()
        reference = (
            TriageDesk(session, audit=runtime.audit(session), clock=runtime.clock)
            .accept(person, tip.id, address=None)
            .reference
        )

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(30_000)
    _sign_in(page, live, runtime, lead)
    page.get_by_role("link", name="Referrals").first.click()
    page.get_by_role("link", name=reference).click()
    assert page.locator("#referral-stage").inner_text().startswith("Assessment")
    assert (
        tip.tracking_number in page.get_by_role("region", name="Tips in this referral").inner_text()
    )

    start = page.locator("#move-investigate")
    start.get_by_label("Note (optional)").fill("The payment trail leads to Luzon.")
    start.get_by_role("button", name="Start the investigation").click()
    assert "now at “Investigation”" in page.get_by_role("status").inner_text()
    assert "The payment trail leads to Luzon." in page.locator("#timeline").inner_text()

    hand = page.locator("#move-hand_over")
    hand.get_by_label("Unit").select_option(label="Luzon child protection unit")
    hand.get_by_role("button", name="Hand over to a unit").click()
    assert "awaiting the unit's answer" in page.locator("#referral-unit").inner_text()
    _screenshot(page, "referral-lead")

    desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    desk.set_default_timeout(30_000)
    _sign_in(desk, live, runtime, officer)
    desk.get_by_role("link", name="Referrals handed to your unit").first.click()
    desk.get_by_role("link", name=reference).click()
    assert "/desk/tips/" not in desk.content()  # officers get no tip content from here
    answer = desk.locator("#move-accept_handover")
    answer.get_by_label("Your unit's reference").fill("LCPU-2026/0042")
    answer.get_by_role("button", name="Accept the hand-over").click()
    assert "now at “With a law-enforcement unit”" in desk.get_by_role("status").inner_text()
    _screenshot(desk, "referral-officer")

    page.reload()
    assert page.locator("#referral-stage").inner_text().startswith("With a law-enforcement unit")
    assert "LCPU-2026/0042" in page.locator("#referral-unit").inner_text()
    timeline = page.locator("#timeline li")
    assert timeline.count() == 4  # opened, investigation, handed over, accepted


def _screenshot(page: sync_api.Page, name: str) -> None:
    """For a person walking the pages: TIPLINE_SCREENSHOTS=<folder> keeps what they looked like."""
    folder = os.environ.get("TIPLINE_SCREENSHOTS")
    if folder:
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)
