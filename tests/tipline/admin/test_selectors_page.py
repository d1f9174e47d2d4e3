"""Selector values in the web: an admin excludes a value by typing it (never stored, never shown
again), and rules on over-correlating values shown without their value."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.triage.correlation import Correlator, reference_of
from referrals.triage.models import SelectorValue
from tests.referrals.triage.fixtures import MakeTip
from tests.tipline.admin.people import Person, audit_records, csrf, enrolled, signed_in_client
from tipline.runtime import Runtime

HELPLINE = "+63 2 8123 4567"


@pytest.fixture
def admin(runtime: Runtime) -> Person:
    return enrolled(runtime, "root@centre.example", "admin")


@pytest.fixture
def admin_client(app: Flask, runtime: Runtime, admin: Person) -> FlaskClient:
    return signed_in_client(app, runtime, admin)


def test_an_admin_excludes_a_typed_value_which_is_kept_only_as_its_index(
    admin_client: FlaskClient, runtime: Runtime, admin: Person
) -> None:
    token = csrf(admin_client.get("/admin/selectors").get_data(as_text=True))
    answer = admin_client.post(
        "/admin/selectors/exclude",
        data={"csrf_token": token, "kind": "phone", "value": HELPLINE, "region": ""},
    )
    assert answer.status_code == 302
    page = admin_client.get("/admin/selectors").get_data(as_text=True)
    assert "Excluded: that value no longer links tips" in page
    # Nor any form of its digits (a shorter run could occur in a random token or reference).
    assert HELPLINE not in page and "8123 4567" not in page and "81234567" not in page
    assert runtime.blind_index is not None
    index = runtime.blind_index.compute("phone", "028123 4567", default_region="PH")
    with runtime.session_factory() as session:
        value = session.get(SelectorValue, index)
        assert value is not None and value.rule == "excluded"
    assert reference_of(index) in page
    excluded = page.split("<h2>Excluded</h2>")[1].split("<h2>")[0]
    assert "Tips" not in excluded and "never" not in excluded  # no oracle: nothing of counts
    [record] = audit_records(runtime, "selector.excluded")
    assert (record.actor, record.subject) == (f"user:{admin.id}", f"selector:{reference_of(index)}")
    assert record.details == {"type": "phone"}


def test_a_value_that_is_not_valid_is_refused_without_being_shown_again(
    admin_client: FlaskClient,
) -> None:
    token = csrf(admin_client.get("/admin/selectors").get_data(as_text=True))
    answer = admin_client.post(
        "/admin/selectors/exclude",
        data={"csrf_token": token, "kind": "phone", "value": "12 not a phone 34"},
    )
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert "Not a valid phone number" in page
    assert "not a phone" not in page


def test_an_over_correlating_value_is_listed_and_allowed(
    admin_client: FlaskClient, runtime: Runtime, make_tip: MakeTip
) -> None:
    shared = "f" * 64
    for _ in range(3):
        tip_id = make_tip()
        with runtime.session_factory.begin() as session:
            Correlator(session, clock=runtime.clock).register(tip_id, {shared: "ip"}, cap=2)
    with runtime.session_factory.begin() as session:
        session.get(SelectorValue, shared).tip_count = 51  # type: ignore[union-attr]
    page = admin_client.get("/admin/selectors").get_data(as_text=True)
    over = page.split("<h2>Over-correlating</h2>")[1].split("<h2>")[0]
    assert reference_of(shared) in over and ">51<" in over
    answer = admin_client.post(
        f"/admin/selectors/{reference_of(shared)}/allow", data={"csrf_token": csrf(page)}
    )
    assert answer.status_code == 302
    with runtime.session_factory() as session:
        assert session.scalars(select(SelectorValue.rule)).all() == ["allowed"]
