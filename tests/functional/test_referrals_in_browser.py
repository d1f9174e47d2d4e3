"""A lead's path through a referral in a real browser (Chromium, the real stylesheet, no
script): open the team's referral, start the investigation with a note, hand it to a unit;
the unit's officer finds it in their own list and accepts it with their reference; the lead
plans an operation for it and another referral, approves it; the officer records that it was
conducted and each referral's outcome; the lead reads the team's dashboard and records a
safeguarded child for a caseworker, who records a milestone of the child's care plan."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from sqlalchemy import select

from referrals.accounts.models import User
from referrals.casework.services import Casework
from referrals.triage.desk import TriageDesk
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.functional.conftest import LiveServer
from tests.functional.test_desk_in_browser import _send, _sign_in
from tests.partners import PartnerKeys
from tests.tipline.admin.people import Person, add_team, add_unit, enrolled
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
    caseworker = enrolled(runtime, "cas@care.example", "caseworker")
    # Marked TLP:AMBER: the hand-over needs no consent (that walk is in
    # test_across_the_border_in_browser.py).
    tip = _send(runtime, partners, intake_keyring, agencies["agency-a"], handling={"tlp": "AMBER"})
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

    # A second referral of the team, already with the unit (made through the services).
    other = _with_the_unit(runtime, partners, intake_keyring, agencies["agency-b"], analyst, lead,
                           officer)  # fmt: skip
    page.get_by_role("link", name="Plan an operation").click()
    page.get_by_label(other, exact=False).check()
    assert page.get_by_label(reference, exact=False).is_checked()
    page.get_by_label("Lead unit").select_option(label="Luzon child protection unit")
    page.get_by_label("Planned date").fill("2026-12-10")
    page.get_by_label("Region (optional, no finer than a region)").fill("Central Luzon")
    page.get_by_role("button", name="Plan the operation").click()
    assert "is planned: it waits for approval" in page.get_by_role("status").inner_text()
    page.get_by_role("button", name="Approve the operation").click()
    assert page.locator("#operation-status").inner_text() == "Approved"
    operation_url = page.url

    desk.get_by_role("link", name="Operations").first.click()
    desk.get_by_role("link", name=operation_url.rsplit("/", 1)[1], exact=False)
    desk.goto(operation_url)
    desk.get_by_role("button", name="The operation was conducted").click()
    assert desk.locator("#operation-status").inner_text() == "Conducted"
    desk.get_by_label(f"{reference}: children safeguarded").fill("5")
    desk.get_by_label(f"{reference}: suspects arrested").fill("1")
    desk.get_by_label(f"{other}: children safeguarded").fill("0")
    desk.get_by_label(f"{other}: suspects arrested").fill("1")
    desk.get_by_role("button", name="Record the outcome").click()
    assert desk.locator("#operation-outcome").inner_text() == (
        "5 children safeguarded, 2 suspects arrested"
    )
    _screenshot(desk, "operation-debriefed")

    page.get_by_role("link", name="Referrals").first.click()
    page.get_by_role("link", name=reference).click()
    assert page.locator("#referral-stage").inner_text().startswith("Outcome recorded")
    assert (
        "5 children safeguarded, 1 suspect arrested"
        in page.locator("#referral-outcome").inner_text()
    )
    _screenshot(page, "referral-outcome")

    page.get_by_role("link", name="Dashboard").first.click()
    funnel = page.get_by_role("img", name="From tips to children in aftercare")
    assert funnel.is_visible()
    assert "Children safeguarded 5" in " ".join(page.locator("#funnel-table").inner_text().split())
    _screenshot(page, "dashboard")

    page.get_by_role("link", name="Aftercare").first.click()
    record = page.get_by_role("region", name=re.compile(reference))
    record.get_by_label("Age (years)").fill("6")
    record.get_by_label("Sex").select_option(label="Female")
    record.get_by_label("Caseworker").select_option(label="cas@care.example")
    record.get_by_role("button", name="Record the child").click()
    pseudonym = re.search(r"C-[A-Z0-9]{6}", page.get_by_role("status").inner_text())
    assert pseudonym is not None

    care = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    care.set_default_timeout(30_000)
    _sign_in(care, live, runtime, caseworker)
    care.get_by_role("link", name="Children in your care").first.click()
    care.get_by_role("link", name=pseudonym.group(0)).click()
    done = care.locator("#record-milestone")
    done.get_by_label("Milestone").select_option(label="Story documented")
    done.get_by_role("button", name="Record it").click()
    assert care.get_by_role("status").inner_text() == "Saved on the care plan."
    assert "Story documented" in care.locator("#milestones").inner_text()
    _screenshot(care, "care-plan")


def _with_the_unit(
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agency: RegisteredAgency,
    analyst: Person,
    lead: Person,
    officer: Person,
) -> str:
    """A referral accepted from a new tip, handed to the officer's unit and accepted there."""
    tip = _send(runtime, partners, intake_keyring, agency, handling={"tlp": "GREEN"})
    with runtime.session_factory() as session:
        people = {p.id: session.get(User, p.id) for p in (analyst, lead, officer)}
        referral = TriageDesk(session, audit=runtime.audit(session), clock=runtime.clock).accept(
            people[analyst.id],
            tip.id,
            address=None,  # type: ignore[arg-type]
        )
        casework = Casework(
            session, audit=runtime.audit(session), clock=runtime.clock, keyring=runtime.keyring
        )
        unit = people[officer.id].unit_id  # type: ignore[union-attr]
        for who, name, values in (
            (lead, "investigate", {}),
            (lead, "hand_over", {"unit_id": str(unit)}),
            (officer, "accept_handover", {"unit_reference": "LCPU-2026/0043"}),
        ):
            casework.advance(people[who.id], referral.id, name, values)  # type: ignore[arg-type]
        return referral.reference


def _screenshot(page: sync_api.Page, name: str) -> None:
    """For a person walking the pages: TIPLINE_SCREENSHOTS=<folder> keeps what they looked like."""
    folder = os.environ.get("TIPLINE_SCREENSHOTS")
    if folder:
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)
