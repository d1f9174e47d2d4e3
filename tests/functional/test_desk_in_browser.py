"""An analyst's path in a real browser (Chromium, the real stylesheet, no script): sign in with
password and code, open the most urgent tip of the queue, see what else the centre holds about
it, accept it into a referral."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from referrals.intake import tasks
from referrals.intake.models import Tip
from referrals.intake.receiving import TipReceiver
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.functional.conftest import LiveServer
from tests.partners import NARRATIVE_MARK, PartnerKeys, valid_tip
from tests.referrals.accounts.test_totp import rfc6238_code
from tests.tipline.admin.people import PASSWORD, add_team, enrolled
from tipline.runtime import Runtime

if TYPE_CHECKING:
    from playwright import sync_api

QUIET = {"urgency": {"imminent_danger": False, "ongoing_abuse": False, "live_streaming": False}}


def _send(
    runtime: Runtime,
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    agency: RegisteredAgency,
    **changes: object,
) -> Tip:
    body = partners.seal(
        valid_tip(**changes), recipient=intake_keyring.fingerprint, signer=agency.key_name
    )
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


def test_an_analyst_opens_the_top_tip_sees_its_matches_and_accepts_it(
    browser: sync_api.Browser,
    live: LiveServer,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> None:
    add_team(runtime, "Manila", "PH")
    analyst = enrolled(runtime, "ana@centre.example", "analyst", team="Manila")
    earlier = _send(runtime, partners, intake_keyring, agencies["agency-b"], **QUIET)
    urgent = _send(runtime, partners, intake_keyring, agencies["agency-a"])
    assert urgent.priority == "P1"

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live.url}/login")
    page.get_by_label("E-mail address", exact=True).fill(analyst.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    # The enrolment used this step's code: the next step's is within the allowed drift.
    code = rfc6238_code(analyst.seed, runtime.clock.now() + timedelta(seconds=30))
    page.get_by_label("Authentication code", exact=True).fill(code)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("link", name="Triage queue").first.click()
    rows = page.locator("table.queue tbody tr")
    assert rows.count() == 2
    top = rows.first
    assert "P1" in top.inner_text()
    assert "imminent danger reported (+60)" in top.inner_text()
    assert NARRATIVE_MARK not in page.content()
    top.get_by_role("link").click()

    assert page.url == f"{live.url}/desk/tips/{urgent.id}"
    matches = page.get_by_role("region", name="What else the centre holds")
    assert earlier.tracking_number in matches.inner_text()
    assert "Agency B" in matches.inner_text()
    assert NARRATIVE_MARK in page.locator("#tip-narrative").inner_text()
    page.get_by_role("button", name="Accept into a new referral").click()
    assert page.get_by_role("status").inner_text().startswith("Accepted: referral RF-")
    assert page.locator("#tip-status").inner_text() == "accepted"
    page.get_by_role("link", name="Back to the queue").click()
    assert page.locator("table.queue tbody tr").count() == 1
