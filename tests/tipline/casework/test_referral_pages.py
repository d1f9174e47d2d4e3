"""The referral pages as their people use them: a lead moves a referral, hands it to a unit,
the unit's officer answers; refusals read as the lifecycle words them; nobody else reaches it."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.accounts.models import Unit
from referrals.casework.models import Referral, ReferralStage
from tests.clock import ManualClock
from tests.tipline.admin.people import csrf
from tests.tipline.desk.conftest import SendTip
from tipline.runtime import Runtime

Browser = Callable[[str], FlaskClient]


def accepted(browser: Browser, send_tip: SendTip, runtime: Runtime) -> int:
    """A tip accepted by the analyst: its referral's id."""
    tip = send_tip()
    ana = browser("ana")
    page = ana.get(f"/desk/tips/{tip.id}").get_data(as_text=True)
    answer = ana.post(f"/desk/tips/{tip.id}/accept", data={"csrf_token": csrf(page)})
    assert answer.status_code == 302
    with runtime.session_factory() as session:
        return session.scalars(select(Referral.id)).one()


def move(client: FlaskClient, referral_id: int, name: str, **fields: str) -> tuple[int, str]:
    """Make a move from the referral's page as a browser does: the page's token and the
    stage it showed, plus ``fields``; then the page it leads back to."""
    page = client.get(f"/referrals/{referral_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    seen = re.search(rf'id="seen-{name}" name="seen_stage" type="hidden" value="([a-z_]+)"', text)
    data = {"csrf_token": csrf(text), "seen_stage": seen.group(1) if seen else "", **fields}
    answer = client.post(f"/referrals/{referral_id}/moves/{name}", data=data)
    if answer.status_code != 302:
        return answer.status_code, answer.get_data(as_text=True)
    after = client.get(answer.headers["Location"])
    return after.status_code, after.get_data(as_text=True)


def stage(runtime: Runtime, referral_id: int) -> str:
    with runtime.session_factory() as session:
        return session.get(Referral, referral_id).stage  # type: ignore[union-attr]


def unit_id(runtime: Runtime, name: str) -> str:
    with runtime.session_factory() as session:
        return str(session.scalars(select(Unit.id).where(Unit.name == name)).one())


def test_from_accepted_tip_to_a_unit_and_its_answer(
    browser: Browser, send_tip: SendTip, runtime: Runtime, clock: ManualClock
) -> None:
    referral_id = accepted(browser, send_tip, runtime)
    lea, oli = browser("lea"), browser("oli")

    listing = lea.get("/referrals").get_data(as_text=True)
    assert f'href="/referrals/{referral_id}"' in listing
    page = lea.get(f"/referrals/{referral_id}")
    assert page.headers["Cache-Control"] == "no-store"
    assert "Assessment" in page.get_data(as_text=True)
    assert "7 days allowed in this stage, until" in page.get_data(as_text=True)
    assert "/desk/tips/" in page.get_data(as_text=True)  # the tip that opened it

    status, text = move(lea, referral_id, "investigate", note="Two usernames, one payment trail.")
    assert status == 200
    assert "the referral is now at “Investigation”" in text
    assert "Two usernames, one payment trail." in text  # the timeline's note, opened

    status, text = move(
        lea, referral_id, "hand_over", unit_id=unit_id(runtime, "Luzon child protection unit")
    )
    assert "Handed over, awaiting the unit" in text
    assert "awaiting the unit's answer, due" in text

    # The officer's list shows it; their page offers the unit's answer, and no tip link.
    assert f'href="/referrals/{referral_id}"' in oli.get("/referrals").get_data(as_text=True)
    officer_page = oli.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "Accept the hand-over" in officer_page
    assert "Refuse the hand-over" in officer_page
    assert "/desk/tips/" not in officer_page
    assert "TL-" not in officer_page  # not even a tip's tracking number
    assert "1 tip: the team that handed it over holds them." in officer_page

    status, text = move(oli, referral_id, "accept_handover", unit_reference="LCPU-2026/0042")
    assert "With a law-enforcement unit" in text
    assert "LCPU-2026/0042" in text
    assert stage(runtime, referral_id) == ReferralStage.WITH_UNIT


def test_a_hand_over_left_unanswered_shows_overdue_to_the_lead(
    browser: Browser, send_tip: SendTip, runtime: Runtime, clock: ManualClock
) -> None:
    referral_id = accepted(browser, send_tip, runtime)
    lea = browser("lea")
    move(lea, referral_id, "investigate")
    move(lea, referral_id, "hand_over", unit_id=unit_id(runtime, "Cebu cybercrime unit"))

    clock.advance(days=8)
    lea = browser("lea")  # signed in again: a week later

    listing = lea.get("/referrals").get_data(as_text=True)
    assert "hand-over unanswered since" in listing
    assert "8 days: past its time" in listing
    page = lea.get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "Unanswered: the unit's answer was due" in page
    assert "Past its time: 7 days allowed in this stage" in page


def test_a_refused_move_says_why_and_changes_nothing(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    referral_id = accepted(browser, send_tip, runtime)
    ana = browser("ana")
    move(ana, referral_id, "investigate")

    # Not offered to an analyst; posted all the same.
    status, text = move(ana, referral_id, "hand_over", unit_id="1")
    assert "Only a team lead may “hand over to a unit”; you are an analyst." in text

    status, text = move(browser("lea"), referral_id, "close_early")
    assert "Nothing was changed. Choose why the referral is closed." in text
    status, text = move(browser("lea"), referral_id, "hand_over", unit_id="²")
    assert "Nothing was changed. Choose the unit to hand it to." in text
    assert stage(runtime, referral_id) == ReferralStage.INVESTIGATION


def test_a_move_chosen_on_a_page_out_of_date_changes_nothing(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    referral_id = accepted(browser, send_tip, runtime)
    lea = browser("lea")
    old_page = lea.get(f"/referrals/{referral_id}").get_data(as_text=True)
    move(browser("ana"), referral_id, "investigate")

    answer = lea.post(
        f"/referrals/{referral_id}/moves/close_early",
        data={
            "csrf_token": csrf(old_page),
            "seen_stage": "assessment",
            "close_reason": "duplicate",
        },
    )

    text = lea.get(answer.headers["Location"]).get_data(as_text=True)
    assert "the referral is now at “Investigation”, not where it was" in text
    assert stage(runtime, referral_id) == ReferralStage.INVESTIGATION


def test_nobody_else_reaches_a_referral(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    referral_id = accepted(browser, send_tip, runtime)

    for name in ("lou", "oli", "ces"):  # another team's lead; officers it is not handed to
        client = browser(name)
        assert client.get(f"/referrals/{referral_id}").status_code == 404
        assert f"/referrals/{referral_id}" not in client.get("/referrals").get_data(as_text=True)
    assert browser("root").get(f"/referrals/{referral_id}").status_code == 403


def test_the_referral_shows_work_sharing_its_identifiers_to_the_team_only(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    referral_id = accepted(browser, send_tip, runtime)  # the example's selectors
    later = send_tip()  # the same selectors, still in triage
    lea = browser("lea")

    page = lea.get(f"/referrals/{referral_id}").get_data(as_text=True)
    section = page[
        page.index('id="correlated"') : page.index("</table>", page.index('id="correlated"'))
    ]
    assert later.tracking_number in section
    assert f'href="/desk/tips/{later.id}"' in section
    assert "email, ip, payment account, phone, url, username" in section
    assert "in triage" in section

    move(lea, referral_id, "investigate")
    move(lea, referral_id, "hand_over", unit_id=unit_id(runtime, "Luzon child protection unit"))
    officer_page = browser("oli").get(f"/referrals/{referral_id}").get_data(as_text=True)
    assert "Correlated work" not in officer_page
    assert later.tracking_number not in officer_page


def test_a_closed_referral_takes_no_more_tips(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    referral_id = accepted(browser, send_tip, runtime)
    move(browser("lea"), referral_id, "close_early", close_reason="duplicate")
    later = send_tip()
    ana = browser("ana")
    page = ana.get(f"/desk/tips/{later.id}").get_data(as_text=True)
    with runtime.session_factory() as session:
        reference = session.get(Referral, referral_id).reference  # type: ignore[union-attr]

    answer = ana.post(
        f"/desk/tips/{later.id}/merge", data={"csrf_token": csrf(page), "referral": reference}
    )

    assert "your team has no open referral with that reference" in ana.get(
        answer.headers["Location"]
    ).get_data(as_text=True)
