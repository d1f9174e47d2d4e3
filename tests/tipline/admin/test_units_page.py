"""Law-enforcement units and their officers' accounts, made by admins in the web."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import select

from referrals.accounts.models import Unit, User
from tests.tipline.admin.people import Person, add_unit, audit_records, csrf, enrolled
from tests.tipline.admin.test_teams_page import _rows, admin, admin_client  # noqa: F401
from tipline.runtime import Runtime


def test_an_admin_registers_a_unit_and_makes_an_officer_of_it(
    admin_client: FlaskClient,  # noqa: F811
    runtime: Runtime,
    admin: Person,  # noqa: F811
) -> None:
    page = admin_client.get("/admin/units").get_data(as_text=True)
    assert "There are no units yet." in page
    answer = admin_client.post(
        "/admin/units",
        data={"csrf_token": csrf(page), "name": " Luzon unit ", "country": "PH", "regions": ""},
    )
    assert answer.headers["Location"] == "/admin/units"
    page = admin_client.get("/admin/units").get_data(as_text=True)
    assert "The unit Luzon unit is registered" in page
    assert _rows(page) == [["Luzon unit", "PH", "the whole country", "0"]]
    (record,) = audit_records(runtime, "unit.created")
    assert record.actor == f"user:{admin.id}"

    form = admin_client.get("/admin/users/new").get_data(as_text=True)
    made = admin_client.post(
        "/admin/users/new",
        data={
            "csrf_token": csrf(form),
            "email": "oli@unit.example",
            "role": "officer",
            "agency": "",
            "team": "",
            "unit": "Luzon unit",
        },
    )
    assert made.status_code == 200
    assert "Account created" in made.get_data(as_text=True)
    with runtime.session_factory() as session:
        officer = session.scalars(select(User).where(User.role == "officer")).one()
        unit_id = session.scalars(select(Unit.id)).one()
    assert officer.unit_id == unit_id
    assert _rows(admin_client.get("/admin/units").get_data(as_text=True))[0][3] == "1"


def test_an_officer_needs_a_unit_and_only_officers_have_one(
    admin_client: FlaskClient,  # noqa: F811
    runtime: Runtime,
) -> None:
    add_unit(runtime, "Luzon unit")
    form = admin_client.get("/admin/users/new").get_data(as_text=True)
    for role, unit, message in (
        ("officer", "", "An officer&#39;s account needs their unit."),
        ("analyst", "Luzon unit", "Only officers belong to a unit."),
    ):
        answer = admin_client.post(
            "/admin/users/new",
            data={"csrf_token": csrf(form), "email": f"{role}@x.example", "role": role,
                  "agency": "", "team": "", "unit": unit},
        )  # fmt: skip
        assert message in answer.get_data(as_text=True)
    with runtime.session_factory() as session:
        assert (
            session.scalars(select(User)).all()
            == session.scalars(select(User).where(User.role == "admin")).all()
        )


def test_a_unit_name_is_given_once(admin_client: FlaskClient, runtime: Runtime) -> None:  # noqa: F811
    add_unit(runtime, "Luzon unit")
    enrolled(runtime, "oli@unit.example", "officer", unit="Luzon unit")
    page = admin_client.get("/admin/units").get_data(as_text=True)
    answer = admin_client.post(
        "/admin/units", data={"csrf_token": csrf(page), "name": "Luzon unit", "country": "PH"}
    )
    assert "A unit named &#39;Luzon unit&#39; exists." in answer.get_data(as_text=True)
    assert _rows(answer.get_data(as_text=True)) == [["Luzon unit", "PH", "the whole country", "1"]]
