"""Tips made directly in the database, for triage tests that need many of them and no gpg."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from referrals.accounts.models import Team
from referrals.intake.models import Agency, Tip, TipStatus
from tipline.runtime import Runtime

MakeTip = Callable[..., str]


@pytest.fixture
def agency_id(runtime: Runtime) -> int:
    with runtime.session_factory.begin() as session:
        agency = Agency(name="Agency T", country="GB", created_at=runtime.clock.now())
        session.add(agency)
        session.flush()
        return agency.id


@pytest.fixture
def make_tip(runtime: Runtime, agency_id: int) -> MakeTip:
    """Adds a processed tip's row (facts as given) and returns its id; not yet admitted."""

    def make(**facts: Any) -> str:
        tip_id = str(uuid.uuid4())
        now = runtime.clock.now()
        values: dict[str, Any] = {
            "imminent_danger": False,
            "ongoing_abuse": False,
            "live_streaming": False,
            "country": "PH",
            "region": None,
            "location_precision": "country",
            "victim_count": 1,
            "youngest_victim_age": None,
            "tlp": "GREEN",
            "unindexed_selectors": 0,
        } | facts
        with runtime.session_factory.begin() as session:
            session.add(
                Tip(
                    id=tip_id,
                    tracking_number=f"TL-{tip_id[:8]}",
                    agency_id=agency_id,
                    status=TipStatus.IN_TRIAGE,
                    received_at=now,
                    updated_at=now,
                    processed_at=now,
                    ciphertext_sha256="0" * 64,
                    ciphertext_bytes=1,
                    **values,
                )
            )
        return tip_id

    return make


@pytest.fixture
def make_team(runtime: Runtime) -> Callable[..., int]:
    def make(name: str, country: str, regions: list[str] | None = None) -> int:
        with runtime.session_factory.begin() as session:
            team = Team(name=name, country=country, regions=regions or [])
            session.add(team)
            session.flush()
            return team.id

    return make
