"""The referral pages' people: the desk's Manila team and Bangkok lead, a unit with an officer
and another unit with one, two caseworkers; tips sent and processed as on the desk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.clock import ManualClock
from tests.tipline.admin.people import Person, add_team, add_unit, enrolled, signed_in_client
from tests.tipline.desk.conftest import clock, send_tip  # noqa: F401 - fixtures shared
from tipline.runtime import Runtime


@pytest.fixture
def handling() -> dict[str, Any]:
    """Tips marked TLP:AMBER: a hand-over to a unit needs no consent (the consent path has
    tests of its own, with tips marked as they say)."""
    return {"tlp": "AMBER", "code": "H2", "source_reliability": "B", "information_accuracy": 2}


@pytest.fixture
def people(runtime: Runtime, clock: ManualClock) -> dict[str, Person]:  # noqa: F811
    add_team(runtime, "Manila", "PH")
    add_team(runtime, "Bangkok", "TH")
    add_unit(runtime, "Luzon child protection unit")
    add_unit(runtime, "Cebu cybercrime unit")
    return {
        "ana": enrolled(runtime, "ana@centre.example", "analyst", team="Manila"),
        "lea": enrolled(runtime, "lea@centre.example", "lead", team="Manila"),
        "lou": enrolled(runtime, "lou@centre.example", "lead", team="Bangkok"),
        "oli": enrolled(runtime, "oli@unit.example", "officer", unit="Luzon child protection unit"),
        "ces": enrolled(runtime, "ces@unit.example", "officer", unit="Cebu cybercrime unit"),
        "cas": enrolled(runtime, "cas@care.example", "caseworker"),
        "cay": enrolled(runtime, "cay@care.example", "caseworker"),
        "root": enrolled(runtime, "root@centre.example", "admin"),
    }


@pytest.fixture
def browser(
    app: Flask, runtime: Runtime, people: dict[str, Person]
) -> Callable[[str], FlaskClient]:
    return lambda name: signed_in_client(app, runtime, people[name])
