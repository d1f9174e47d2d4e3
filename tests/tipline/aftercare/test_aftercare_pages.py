"""The aftercare pages: a lead records a safeguarded child for a caseworker, who keeps the
care plan; nobody else sees the child."""

from __future__ import annotations

import re

from sqlalchemy import select

from referrals.aftercare.models import Child
from referrals.operations.models import Operation
from tests.tipline.admin.people import Person, csrf
from tests.tipline.casework.test_referral_pages import Browser, unit_id
from tests.tipline.desk.conftest import SendTip
from tests.tipline.operations.test_operation_pages import step, with_the_unit
from tipline.runtime import Runtime


def safeguarded(browser: Browser, send_tip: SendTip, runtime: Runtime) -> int:
    """A referral whose operation safeguarded 2 children."""
    (referral_id,) = with_the_unit(browser, send_tip, runtime, 1)
    lea = browser("lea")
    form = lea.get("/operations/new").get_data(as_text=True)
    lea.post(
        "/operations/new",
        data={"csrf_token": csrf(form), "referral": str(referral_id),
              "lead_unit": unit_id(runtime, "Luzon child protection unit"),
              "planned_for": "2026-12-10"},
    )  # fmt: skip
    with runtime.session_factory() as session:
        operation_id = session.scalars(select(Operation.id)).one()
    step(lea, operation_id, "approve")
    step(lea, operation_id, "conduct")
    step(lea, operation_id, "debrief", outcome_for=str(referral_id),
         **{f"children-{referral_id}": "2", f"suspects-{referral_id}": "1"})  # fmt: skip
    return referral_id


def test_a_lead_records_a_child_and_the_caseworker_keeps_the_care_plan(
    browser: Browser, send_tip: SendTip, runtime: Runtime, people: dict[str, Person]
) -> None:
    referral_id = safeguarded(browser, send_tip, runtime)
    lea, cas = browser("lea"), browser("cas")

    page = lea.get("/aftercare").get_data(as_text=True)
    assert "0 of 2 children recorded" in page
    answer = lea.post(
        f"/aftercare/referrals/{referral_id}/children",
        data={"csrf_token": csrf(page), "age": "6", "sex": "female",
              "caseworker": str(people["cas"].id)},
    )  # fmt: skip
    page = lea.get(answer.headers["Location"]).get_data(as_text=True)
    pseudonym = re.search(r"Recorded as (C-[A-Z0-9]{6})", page)
    assert pseudonym is not None
    assert "1 of 2 children recorded" in page
    assert pseudonym.group(1) not in lea.get("/aftercare").get_data(as_text=True)  # counts only

    listing = cas.get("/aftercare").get_data(as_text=True)
    assert pseudonym.group(1) in listing
    with runtime.session_factory() as session:
        child_id = session.scalars(select(Child.id)).one()
    care = cas.get(f"/aftercare/children/{child_id}")
    assert care.headers["Cache-Control"] == "no-store"
    text = care.get_data(as_text=True)
    answer = cas.post(
        f"/aftercare/children/{child_id}/done",
        data={"csrf_token": csrf(text), "kind": "story_documented", "on": "2026-11-29"},
    )
    text = cas.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Saved on the care plan." in text
    assert '<th scope="row">Story documented</th>' in text
    answer = cas.post(
        f"/aftercare/children/{child_id}/placement",
        data={"csrf_token": csrf(text), "placement": "a street address"},
    )
    assert "Choose the kind of placement." in cas.get(answer.headers["Location"]).get_data(
        as_text=True
    )

    assert browser("cay").get(f"/aftercare/children/{child_id}").status_code == 404
    assert pseudonym.group(1) not in browser("cay").get("/aftercare").get_data(as_text=True)
    assert lea.get(f"/aftercare/children/{child_id}").status_code == 403
