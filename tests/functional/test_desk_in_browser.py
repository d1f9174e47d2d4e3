"""An analyst's path in a real browser (Chromium, the real stylesheet, no script): sign in with
password and code, open the most urgent tip of the queue, see what else the centre holds about
it, accept it into a referral."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from referrals.intake import tasks
from referrals.intake.models import Tip
from referrals.intake.receiving import TipReceiver
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.functional.conftest import LiveServer
from tests.partners import NARRATIVE_MARK, PartnerKeys, valid_tip
from tests.referrals.accounts.test_totp import rfc6238_code
from tests.tipline.admin.people import PASSWORD, Person, add_team, enrolled
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
    _sign_in(page, live, runtime, analyst)

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


def _sign_in(page: sync_api.Page, live: LiveServer, runtime: Runtime, person: Person) -> None:
    page.goto(f"{live.url}/login")
    page.get_by_label("E-mail address", exact=True).fill(person.email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    # The enrolment used this step's code: the next step's is within the allowed drift.
    code = rfc6238_code(person.seed, runtime.clock.now() + timedelta(seconds=30))
    page.get_by_label("Authentication code", exact=True).fill(code)
    page.get_by_role("button", name="Sign in").click()


def test_an_analyst_asks_the_agency_and_its_officer_reads_the_question_in_the_portal(
    browser: sync_api.Browser,
    live: LiveServer,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
    tmp_path: Path,
) -> None:
    add_team(runtime, "Manila", "PH")
    analyst = enrolled(runtime, "ana@centre.example", "analyst", team="Manila")
    a = agencies["agency-a"]
    officer = enrolled(runtime, "officer@agency-a.example", "partner", agency_id=a.id)
    tip = _send(runtime, partners, intake_keyring, a)
    question = "Can you send the chat logs of 12 March?\n\nAnd the suspect's second number?"

    desk = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    desk.set_default_timeout(30_000)
    _sign_in(desk, live, runtime, analyst)
    desk.goto(f"{live.url}/desk/tips/{tip.id}")
    desk.get_by_label("What the partner agency should send").fill(question)
    desk.get_by_role("button", name="Ask the agency").click()
    thread = desk.get_by_role("region", name="Messages with Agency A")
    assert "not fetched yet" in thread.inner_text()

    portal = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    portal.set_default_timeout(30_000)
    _sign_in(portal, live, runtime, officer)
    portal.goto(f"{live.url}/partner/tips/{tip.id}")
    messages = portal.get_by_role("region", name="Messages with the centre")
    text = messages.inner_text()
    assert "Can you send the chat logs of 12 March?" in text
    assert "And the suspect's second number?" in text
    # Its paragraphs as the analyst wrote them.
    assert messages.locator(".message p").count() == 2
    portal.screenshot(path=str(tmp_path / "portal.png"), full_page=True)
    with portal.expect_download() as download:
        messages.get_by_role("link", name=re.compile("The sealed message")).click()
    assert download.value.suggested_filename.endswith(".asc")

    desk.reload()
    assert "fetched" in thread.inner_text() and "not fetched yet" not in thread.inner_text()

    # The officer answers on the same page; a worker checks it; the analyst reads it.
    portal.get_by_label("Your answer to the centre").fill("The logs follow by courier.")
    portal.get_by_role("button", name="Send the answer").click()
    assert portal.get_by_role("status").inner_text() == "Your answer was sent to the centre."
    assert "being checked" in messages.inner_text()
    runtime.queue.worker(runtime.job_context()).work(burst=True)
    portal.reload()
    assert "received by the centre" in messages.inner_text()
    # The officer sees what they sent (sealed for the portal key too).
    assert "The logs follow by courier." in messages.inner_text()
    portal.screenshot(path=str(tmp_path / "portal-answered.png"), full_page=True)
    desk.reload()
    assert "The logs follow by courier." in thread.inner_text()
