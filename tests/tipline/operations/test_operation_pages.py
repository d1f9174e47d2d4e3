"""The operations pages as a lead and a unit's officer use them: plan an operation for two
referrals, approve it, conduct it, record each referral's outcome; see it on the board."""

from __future__ import annotations

import re

from sqlalchemy import select

from referrals.casework.models import Referral, ReferralStage
from referrals.operations.models import Operation
from tests.tipline.admin.people import csrf
from tests.tipline.casework.test_referral_pages import Browser, move, unit_id
from tests.tipline.desk.conftest import SendTip
from tipline.runtime import Runtime


def with_the_unit(browser: Browser, send_tip: SendTip, runtime: Runtime, count: int) -> list[int]:
    """Referrals accepted from tips, handed to the Luzon unit, accepted by its officer."""
    ana, lea, oli = browser("ana"), browser("lea"), browser("oli")
    luzon = unit_id(runtime, "Luzon child protection unit")
    ids = []
    for _ in range(count):
        tip = send_tip()
        page = ana.get(f"/desk/tips/{tip.id}").get_data(as_text=True)
        ana.post(f"/desk/tips/{tip.id}/accept", data={"csrf_token": csrf(page)})
        with runtime.session_factory() as session:
            referral_id = session.scalars(select(Referral.id).where(Referral.id.not_in(ids))).one()
        move(lea, referral_id, "investigate")
        move(lea, referral_id, "hand_over", unit_id=luzon)
        move(oli, referral_id, "accept_handover", unit_reference=f"LCPU-{referral_id}")
        ids.append(referral_id)
    return ids


def step(client, operation_id: int, name: str, **fields: str) -> str:  # type: ignore[no-untyped-def]
    page = client.get(f"/operations/{operation_id}").get_data(as_text=True)
    seen = re.search(rf'id="seen-{name}" name="seen_status" type="hidden" value="([a-z]+)"', page)
    data = {"csrf_token": csrf(page), "seen_status": seen.group(1) if seen else "", **fields}
    answer = client.post(f"/operations/{operation_id}/steps/{name}", data=data)
    assert answer.status_code == 302
    return str(client.get(answer.headers["Location"]).get_data(as_text=True))


def test_a_lead_plans_an_operation_for_two_referrals_and_its_unit_records_the_outcome(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    first, second = with_the_unit(browser, send_tip, runtime, 2)
    lea, oli = browser("lea"), browser("oli")

    # The referral's page leads to planning, with the referral chosen.
    referral_page = lea.get(f"/referrals/{first}").get_data(as_text=True)
    assert f'href="/operations/new?referral={first}"' in referral_page
    form = lea.get(f"/operations/new?referral={first}").get_data(as_text=True)
    assert f'id="referral-{first}" name="referral" value="{first}" checked' in form
    answer = lea.post(
        "/operations/new",
        data={
            "csrf_token": csrf(form),
            "referral": [str(first), str(second)],
            "lead_unit": unit_id(runtime, "Luzon child protection unit"),
            "partner_unit": unit_id(runtime, "Cebu cybercrime unit"),
            "planned_for": "2026-12-10",
            "region": "Central Luzon",
        },
    )
    assert answer.status_code == 302
    with runtime.session_factory() as session:
        operation = session.scalars(select(Operation)).one()
    page = lea.get(answer.headers["Location"]).get_data(as_text=True)
    assert f"Operation {operation.reference} is planned" in page
    assert "Cebu cybercrime unit" in page

    assert "Approved" in step(lea, operation.id, "approve")
    # The unit's officer finds it on their board and takes it on from there.
    assert operation.reference in oli.get("/operations").get_data(as_text=True)
    assert "Conducted" in step(oli, operation.id, "conduct")
    page = step(
        oli, operation.id, "debrief",
        outcome_for=[str(first), str(second)],
        **{f"children-{first}": "3", f"suspects-{first}": "1",
           f"children-{second}": "2", f"suspects-{second}": "0"},
    )  # fmt: skip
    assert "Debriefed" in page
    assert "5 children safeguarded, 1 suspect arrested" in page
    with runtime.session_factory() as session:
        stages = session.scalars(select(Referral.stage).order_by(Referral.id)).all()
    assert stages == [ReferralStage.OUTCOME_RECORDED] * 2
    board = lea.get("/operations").get_data(as_text=True)
    assert "Debriefed (1)" in board


def test_a_plan_missing_something_is_shown_again_with_what_was_chosen(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    (first,) = with_the_unit(browser, send_tip, runtime, 1)
    lea = browser("lea")
    form = lea.get("/operations/new").get_data(as_text=True)

    answer = lea.post(
        "/operations/new",
        data={"csrf_token": csrf(form), "referral": str(first), "planned_for": "soon"},
    )

    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert (
        "Nothing was planned. Choose the unit that leads the operation. Give the planned date "
        "(YYYY-MM-DD)." in page
    )
    assert f'value="{first}" checked' in page


def test_an_officer_of_another_unit_does_not_reach_an_operation(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    (first,) = with_the_unit(browser, send_tip, runtime, 1)
    lea = browser("lea")
    form = lea.get("/operations/new").get_data(as_text=True)
    lea.post(
        "/operations/new",
        data={
            "csrf_token": csrf(form),
            "referral": str(first),
            "lead_unit": unit_id(runtime, "Luzon child protection unit"),
            "planned_for": "2026-12-10",
        },
    )
    with runtime.session_factory() as session:
        operation_id = session.scalars(select(Operation.id)).one()

    ces = browser("ces")
    assert ces.get(f"/operations/{operation_id}").status_code == 404
    assert browser("lou").get(f"/operations/{operation_id}").status_code == 404


def test_numbers_a_browser_would_not_send_are_refused_as_form_errors(
    browser: Browser, send_tip: SendTip, runtime: Runtime
) -> None:
    lea = browser("lea")
    assert lea.get("/operations/new?referral=²").status_code == 200
    form = lea.get("/operations/new").get_data(as_text=True)
    for field in ("referral", "lead_unit", "partner_unit"):
        answer = lea.post(
            "/operations/new",
            data={"csrf_token": csrf(form), field: "²", "planned_for": "2026-12-10"},
        )
        assert answer.status_code == 200, field
        assert "Nothing was planned." in answer.get_data(as_text=True)
