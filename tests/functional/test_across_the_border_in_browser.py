"""Across the border in a real browser (Chromium, the real stylesheet, no script): a lead's
hand-over is refused for the partner's TLP:AMBER+STRICT; the lead asks the agency's consent;
the agency's officer reads the request in the portal and answers; a worker checks the answer;
the lead records it and hands over. Then the lead writes feedback, sees exactly what would
leave, releases it; the officer reads it in the portal, where the tip now shows as under
investigation, and the lead sees it was fetched."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from referrals.accounts.models import User
from referrals.triage.desk import TriageDesk
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.functional.conftest import LiveServer
from tests.functional.test_desk_in_browser import _send, _sign_in
from tests.functional.test_referrals_in_browser import _screenshot
from tests.partners import PartnerKeys
from tests.tipline.admin.people import add_team, add_unit, enrolled
from tipline.runtime import Runtime

if TYPE_CHECKING:
    from playwright import sync_api

LUZON = "Luzon child protection unit"


def test_consent_for_a_hand_over_then_feedback_the_partner_reads_in_its_portal(
    browser: sync_api.Browser,
    live: LiveServer,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    add_team(runtime, "Manila", "PH")
    add_unit(runtime, LUZON)
    analyst = enrolled(runtime, "ana@centre.example", "analyst", team="Manila")
    lead = enrolled(runtime, "lea@centre.example", "lead", team="Manila")
    a = agencies["agency-a"]
    officer = enrolled(runtime, "officer@agency-a.example", "partner", agency_id=a.id)
    tip = _send(runtime, partners, intake_keyring, a, handling={"tlp": "AMBER+STRICT"})
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
    marking = page.locator("#referral-marking").inner_text()
    assert "TLP:AMBER+STRICT (the recipient organisation only)" in marking
    page.locator("#move-investigate").get_by_role("button", name="Start the investigation").click()
    hand = page.locator("#move-hand_over")
    assert "Marked TLP:AMBER+STRICT by Agency A" in hand.inner_text()  # said before trying
    hand.get_by_label("Unit").select_option(label=LUZON)
    hand.get_by_role("button", name="Hand over to a unit").click()
    refusal = page.get_by_role("alert").inner_text()
    assert f"may not go to {LUZON} without the consent of the agency that marked it" in refusal
    assert "TLP:AMBER+STRICT from Agency A (the recipient organisation only)" in refusal

    ask = page.locator("#ask-consent")
    ask.get_by_label("To be shared with").select_option(label=LUZON)
    ask.get_by_label("Anything to add (optional)").fill("The unit plans a safeguarding visit.")
    ask.get_by_role("button", name="Ask for consent").click()
    assert "Asked:" in page.get_by_role("status").inner_text()
    assert "Waiting for the agency's answer" in page.locator("#consents").inner_text()
    _screenshot(page, "consent-asked")

    portal = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    portal.set_default_timeout(30_000)
    _sign_in(portal, live, runtime, officer)
    portal.goto(f"{live.url}/partner/tips/{tip.id}")
    messages = portal.get_by_role("region", name="Messages with the centre")
    text = messages.inner_text()
    assert "a request for your consent to pass on what you marked" in text
    assert f"marked TLP:AMBER+STRICT, with {LUZON}" in text
    portal.get_by_label("Your answer to the centre").fill("We consent to the hand-over to Luzon.")
    portal.get_by_role("button", name="Send the answer").click()
    runtime.queue.worker(runtime.job_context()).work(burst=True)  # the reply is checked

    page.reload()
    consents = page.locator("#consents")
    assert "We consent to the hand-over to Luzon." in consents.inner_text()
    consents.get_by_label("It gives its consent").check()
    consents.get_by_role("button", name="Record the answer").click()
    assert "Recorded: consent granted." in page.get_by_role("status").inner_text()
    hand = page.locator("#move-hand_over")
    hand.get_by_label("Unit").select_option(label=LUZON)
    hand.get_by_role("button", name="Hand over to a unit").click()
    assert "Handed over, awaiting the unit" in page.locator("#referral-stage").inner_text()

    page.get_by_role("link", name="Write feedback to an agency").click()
    page.get_by_label("What the agency is told").fill(
        "Thank you: your tip is under investigation.\n\nA unit has taken the case on."
    )
    page.get_by_role("button", name="Show what would leave").click()
    assert page.locator("#release-agency").inner_text() == "Agency A"
    assert page.locator("#release-tips").inner_text() == tip.tracking_number
    assert page.locator("#release-stage").inner_text() == "under investigation"
    assert page.locator("#release-text .message p").count() == 2
    _screenshot(page, "feedback-preview")
    page.get_by_role("button", name="Release to Agency A").click()
    assert "Released:" in page.get_by_role("status").inner_text()
    assert "not yet fetched by the agency" in page.locator("#feedback").inner_text()

    portal.get_by_role("link", name="Feedback").first.click()
    feedback = portal.locator("#feedback").inner_text()
    assert "A unit has taken the case on." in feedback
    assert "Status: Under investigation" in feedback
    _screenshot(portal, "feedback-portal")
    portal.get_by_role("link", name="Your agency's tips").first.click()
    assert "Under investigation" in portal.get_by_role("table").inner_text()

    page.reload()
    assert "fetched by the agency" in page.locator("#feedback").inner_text()
    assert "not yet fetched" not in page.locator("#feedback").inner_text()

    # Sending it on to another centre (agency B stands for one) needs agency A's consent for
    # that centre too: the export page says so before, and the refusal after.
    page.get_by_role("link", name="Export a package for another country's centre").click()
    assert "Marked so that it needs consent to leave: Agency A" in page.content()
    page.get_by_label("To", exact=True).select_option(label="Agency B")
    page.get_by_label("Summary for the recipient's analysts").fill("A facilitator moved abroad.")
    page.get_by_role("button", name="Seal and export").click()
    refused = page.locator(".error").inner_text()
    assert "Nothing was exported: this referral holds information that may not go to Agency B" in (
        refused
    )
    _screenshot(page, "export-refused")
