"""Casework's people: a Manila team (analyst, lead), a Bangkok team's lead, two units with an
officer each, an admin; and referrals opened as an accepted tip opens them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from referrals.accounts.models import Team, User
from referrals.aftercare.services import Aftercare
from referrals.casework.models import Referral, ReferralStage
from referrals.casework.services import Casework, opening
from referrals.operations.services import Operations
from tests.clock import ManualClock
from tests.tipline.admin.people import Person, add_team, add_unit, enrolled
from tipline.runtime import Runtime


@dataclass
class Cast:
    runtime: Runtime
    people: dict[str, Person]
    units: dict[str, int]

    def casework(self, session: Session) -> Casework:
        return Casework(
            session,
            audit=self.runtime.audit(session),
            clock=self.runtime.clock,
            keyring=self.runtime.keyring,
        )

    def operations(self, session: Session) -> Operations:
        return Operations(
            session,
            audit=self.runtime.audit(session),
            clock=self.runtime.clock,
            casework=self.casework(session),
        )

    def aftercare(self, session: Session) -> Aftercare:
        return Aftercare(session, audit=self.runtime.audit(session), clock=self.runtime.clock)

    def user(self, session: Session, name: str) -> User:
        user = session.get(User, self.people[name].id)
        assert user is not None
        return user

    def new_referral(self, team: str = "Manila") -> int:
        """A referral in assessment, opened by the team's lead (as accepting a tip does)."""
        with self.runtime.session_factory() as session:
            lead = self.user(session, "lea" if team == "Manila" else "lou")
            now = self.runtime.clock.now()
            referral = Referral(
                reference="pending",
                team_id=session.query(Team.id).filter(Team.name == team).scalar(),
                stage=ReferralStage.ASSESSMENT.value,
                stage_entered_at=now,
                created_at=now,
                created_by_id=lead.id,
                updated_at=now,
            )
            session.add(referral)
            session.flush()
            referral.reference = f"RF-{now:%Y}-{referral.id:06d}"
            session.add(opening(referral, lead, now))
            session.commit()
            return referral.id


@pytest.fixture
def clock(runtime: Runtime) -> ManualClock:
    runtime.clock = ManualClock()
    return runtime.clock


@pytest.fixture
def cast(runtime: Runtime, clock: ManualClock) -> Cast:
    add_team(runtime, "Manila", "PH")
    add_team(runtime, "Bangkok", "TH")
    units = {
        "Luzon": add_unit(runtime, "Luzon child protection unit"),
        "Cebu": add_unit(runtime, "Cebu cybercrime unit"),
    }
    people = {
        "ana": enrolled(runtime, "ana@centre.example", "analyst", team="Manila"),
        "lea": enrolled(runtime, "lea@centre.example", "lead", team="Manila"),
        "lou": enrolled(runtime, "lou@centre.example", "lead", team="Bangkok"),
        "oli": enrolled(runtime, "oli@unit.example", "officer", unit="Luzon child protection unit"),
        "ces": enrolled(runtime, "ces@unit.example", "officer", unit="Cebu cybercrime unit"),
        "cas": enrolled(runtime, "cas@care.example", "caseworker"),
        "cay": enrolled(runtime, "cay@care.example", "caseworker"),
        "root": enrolled(runtime, "root@centre.example", "admin"),
    }
    return Cast(runtime, people, units)
