"""The desk's people and tips: a Philippines team (analysts, a lead), a Thailand team's analyst,
and tips sent by partners and processed in-process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from referrals.intake import tasks
from referrals.intake.models import Tip
from referrals.intake.receiving import TipReceiver
from tests.clock import ManualClock
from tests.conftest import IntakeKeyring, RegisteredAgency
from tests.partners import PartnerKeys, valid_tip
from tests.tipline.admin.people import Person, add_team, enrolled, signed_in_client
from tipline.runtime import Runtime

SendTip = Callable[..., Tip]


@pytest.fixture
def clock(runtime: Runtime) -> ManualClock:
    runtime.clock = ManualClock()
    return runtime.clock


@pytest.fixture
def people(runtime: Runtime, clock: ManualClock) -> dict[str, Person]:
    add_team(runtime, "Manila", "PH")
    add_team(runtime, "Bangkok", "TH")
    return {
        "ana": enrolled(runtime, "ana@centre.example", "analyst", team="Manila"),
        "ben": enrolled(runtime, "ben@centre.example", "analyst", team="Manila"),
        "lea": enrolled(runtime, "lea@centre.example", "lead", team="Manila"),
        "tom": enrolled(runtime, "tom@centre.example", "analyst", team="Bangkok"),
        "lou": enrolled(runtime, "lou@centre.example", "lead", team="Bangkok"),
        "root": enrolled(runtime, "root@centre.example", "admin"),
    }


@pytest.fixture
def browser(
    app: Flask, runtime: Runtime, people: dict[str, Person]
) -> Callable[[str], FlaskClient]:
    return lambda name: signed_in_client(app, runtime, people[name])


@pytest.fixture
def handling() -> dict[str, Any] | None:
    """The partners' marking of the tips ``send_tip`` sends (None: the fixture document's,
    TLP:AMBER+STRICT). Pages past the desk mark theirs so a hand-over needs no consent."""
    return None


@pytest.fixture
def send_tip(
    clock: ManualClock,  # first: agencies' keys are pinned on the same clock as tips arrive
    handling: dict[str, Any] | None,
    runtime: Runtime,
    agencies: dict[str, RegisteredAgency],
    partners: PartnerKeys,
    intake_keyring: IntakeKeyring,
) -> SendTip:
    """A tip sealed by a partner, received and processed (into triage)."""

    def send(agency: str = "agency-a", **changes: Any) -> Tip:
        registered = agencies[agency]
        marked = {"handling": handling} if handling is not None else {}
        body = partners.seal(
            valid_tip(**(marked | changes)),
            recipient=intake_keyring.fingerprint,
            signer=registered.key_name,
        )
        with runtime.session_factory() as session:
            tip_id = (
                TipReceiver(session, queue=runtime.queue, clock=runtime.clock)
                .receive(registered.id, body)
                .tip.id
            )
        tasks.process_tip(runtime.job_context(), tip_id)
        with runtime.session_factory() as session:
            tip = session.get(Tip, tip_id)
            assert tip is not None
            return tip

    return send
