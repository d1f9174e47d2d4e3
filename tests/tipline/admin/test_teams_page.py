"""Teams, made and listed by admins in the web (until now only `tipline team add`)."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.tipline.admin.people import (
    Person,
    add_team,
    audit_records,
    csrf,
    enrolled,
    signed_in_client,
)
from tipline.runtime import Runtime


@pytest.fixture
def admin(runtime: Runtime) -> Person:
    return enrolled(runtime, "root@centre.example", "admin")


@pytest.fixture
def admin_client(app: Flask, runtime: Runtime, admin: Person) -> FlaskClient:
    return signed_in_client(app, runtime, admin)


def _rows(page: str) -> list[list[str]]:
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_teams_are_listed_with_their_jurisdiction_and_members(
    admin_client: FlaskClient, runtime: Runtime
) -> None:
    add_team(runtime, "Manila", "PH")
    enrolled(runtime, "ana@centre.example", "analyst", team="Manila")
    enrolled(runtime, "lead@centre.example", "lead", team="Manila")
    add_team(runtime, "Cebu", "PH")
    page = admin_client.get("/admin/teams").get_data(as_text=True)
    assert _rows(page) == [
        ["Cebu", "PH", "the whole country", "0"],
        ["Manila", "PH", "the whole country", "2"],
    ]
    assert '<a href="/admin/teams" aria-current="page">Teams</a>' in page  # in the navigation


def test_an_admin_makes_a_team_and_it_is_audited(
    admin_client: FlaskClient, runtime: Runtime, admin: Person
) -> None:
    page = admin_client.get("/admin/teams").get_data(as_text=True)
    assert "There are no teams yet." in page
    answer = admin_client.post(
        "/admin/teams",
        data={
            "csrf_token": csrf(page),
            "name": " Central Luzon ",
            "country": "PH",
            "regions": "Pampanga\n\nTarlac\n",
        },
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/teams"
    page = admin_client.get("/admin/teams").get_data(as_text=True)
    assert "The team Central Luzon is created" in page
    assert _rows(page) == [["Central Luzon", "PH", "Pampanga, Tarlac", "0"]]
    (record,) = audit_records(runtime, "team.created")
    assert record.actor == f"user:{admin.id}" and record.details == {"country": "PH"}
    # And people can join it at once.
    form = admin_client.get("/admin/users/new").get_data(as_text=True)
    assert '<option value="Central Luzon">Central Luzon</option>' in form


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": ""}, "name", "Give the team a name."),
        ({"name": "Manila"}, "name", "A team named &#39;Manila&#39; exists."),
        ({"country": ""}, "country", "Choose the country the team works."),
        ({"country": "XX"}, "country", "Not a valid choice."),
        ({"regions": "x" * 101}, "regions", "Write each region in at most 100 characters."),
    ],
)
def test_a_refused_team_is_a_form_error_beside_its_field(
    admin_client: FlaskClient, runtime: Runtime, data: dict[str, str], field: str, message: str
) -> None:
    add_team(runtime, "Manila", "PH")
    page = admin_client.get("/admin/teams").get_data(as_text=True)
    answer = admin_client.post(
        "/admin/teams", data={"csrf_token": csrf(page), "name": "Cebu", "country": "PH"} | data
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert f'<p class="error" id="{field}-error">{message}</p>' in page
    assert len(audit_records(runtime, "team.created")) == 1  # Manila's only
