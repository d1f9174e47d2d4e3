"""Demo data: a living, wholly fictional centre for a newcomer to look around.

``fill`` makes, through the same services the pages and workers use (so everything is audited,
sealed and indexed as in real use): fictional partner agencies with keys made here and thrown
away, two teams and two law-enforcement units, staff of every role (each with a one-time
enrolment link), a few hundred tips sealed and processed as partners' would be, triage
decisions, referrals in every stage, operations in every status with outcomes, and children
in aftercare with care plans. It happens over a clock that runs from five months ago to now.

No real person, no place finer than a region, no real organisation or its key: names end in
``.example`` and agencies are "Demo ...".
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crypto import Keyring
from referrals.accounts.models import Team, Unit, User
from referrals.accounts.services import AccountService, ApprovalRule, TeamService, UnitService
from referrals.aftercare.models import Child
from referrals.aftercare.services import RECORDING_STAGES, Aftercare
from referrals.casework.models import Referral, ReferralStage
from referrals.casework.services import Casework
from referrals.feedback.services import FeedbackDesk
from referrals.handling.models import RecipientKind
from referrals.handling.services import Consents, Recipient, restrictions
from referrals.intake.agencies import AgencyService
from referrals.intake.models import Agency, IntakeKey, Tip, TipStatus
from referrals.intake.processing import TipProcessor
from referrals.intake.receiving import TipReceiver
from referrals.messages.checking import ReplyChecker
from referrals.messages.models import Message
from referrals.messages.services import Correspondence
from referrals.onward.services import OnwardPackages
from referrals.operations.models import Operation
from referrals.operations.services import Operations, Outcome
from referrals.triage.desk import DeclineReason, TriageDesk
from tipline.runtime import Runtime

ACTOR = "cli:demo"
DAYS = 150
AGENCIES = (
    ("Demo Northland National Crime Agency", "GB"),
    ("Demo Westmark Child Safety Hotline", "NL"),
    ("Demo Eastport Federal Police", "AU"),
)
#: A centre abroad, for onward referral (registered like a partner agency).
ABROAD = ("Demo Southsea National Centre", "TH")
TEAMS = (
    ("Luzon desk", ["Central Luzon", "Metro Manila", "Calabarzon"]),
    ("Visayas desk", ["Central Visayas", "Western Visayas"]),
)
# Each team's unit, and the unit's officer (see PEOPLE).
UNITS = {
    "Luzon desk": ("Demo Luzon Women and Children Protection Unit", "oli@luzon-unit.example"),
    "Visayas desk": ("Demo Visayas Anti-Trafficking Unit", "ola@visayas-unit.example"),
}
OTHER_REGIONS = ["Davao Region", "Northern Mindanao"]  # no team covers them: unrouted
# (e-mail, role, team or unit or agency)
PEOPLE = (
    ("demo.admin@centre.example", "admin", None),
    ("ana.luzon@centre.example", "analyst", "Luzon desk"),
    ("ben.luzon@centre.example", "analyst", "Luzon desk"),
    ("lea.luzon@centre.example", "lead", "Luzon desk"),
    ("vic.visayas@centre.example", "analyst", "Visayas desk"),
    ("lou.visayas@centre.example", "lead", "Visayas desk"),
    ("oli@luzon-unit.example", "officer", "Demo Luzon Women and Children Protection Unit"),
    ("ola@visayas-unit.example", "officer", "Demo Visayas Anti-Trafficking Unit"),
    ("cas@care.example", "caseworker", None),
    ("cam@care.example", "caseworker", None),
    ("pat@northland.example", "partner", "Demo Northland National Crime Agency"),
)
# Where accepted referrals end up (weights), walked there through the lifecycle.
DESTINATIONS = (
    (ReferralStage.ASSESSMENT, 4),
    (ReferralStage.INVESTIGATION, 5),
    (ReferralStage.HANDOVER_PENDING, 3),
    (ReferralStage.WITH_UNIT, 3),
    ("operation", 9),  # into an operation, which then goes as far as it goes
    (ReferralStage.CLOSED, 2),  # closed early
)
MILESTONES = ("story_documented", "care_plan_agreed", "school_enrolled", "weekly_visit",
              "family_assessment", "court_testimony_support", "reintegration")  # fmt: skip


class DemoRefused(RuntimeError):
    """The instance is not empty: the demo fills only an empty one."""


@dataclass
class DemoClock:
    """A clock the demo moves forward as its story goes (services take it like any clock)."""

    moment: datetime

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@dataclass(frozen=True)
class Account:
    email: str
    role: str
    enrolment_link: str
    awaiting_approval: bool


@dataclass
class Filled:
    """What the demo made, for the command to print."""

    accounts: list[Account] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def refuse_unless_empty(session: Session) -> None:
    """Refuse an instance that holds anything but what `tipline init` made (an administrator
    not yet enrolled): the demo's accounts and tips must never mix with real ones."""
    held = {
        ("agency", "agencies"): session.scalar(select(func.count()).select_from(Agency)),
        ("team", "teams"): session.scalar(select(func.count()).select_from(Team)),
        ("unit", "units"): session.scalar(select(func.count()).select_from(Unit)),
        ("tip", "tips"): session.scalar(select(func.count()).select_from(Tip)),
        ("enrolled account", "enrolled accounts"): session.scalar(
            select(func.count()).select_from(User).where(User.enrolled_at.is_not(None))
        ),
    }
    if any(held.values()):
        found = ", ".join(f"{n} {one if n == 1 else many}" for (one, many), n in held.items() if n)
        raise DemoRefused(f"the demo fills an empty instance only; this one holds {found}")


def fill(runtime: Runtime, *, tips: int, base_url: str, seed: int = 7) -> Filled:
    """Fill the runtime's (empty) instance; see the module's description."""
    with runtime.session_factory() as session:
        refuse_unless_empty(session)
    scratch = Path(tempfile.mkdtemp(prefix="tl-demo-", dir="/tmp"))
    try:
        with Keyring(scratch / "gnupg") as partner_keys:
            return _Story(runtime, partner_keys, random.Random(seed), base_url).tell(tips)  # noqa: S311
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Story:
    def __init__(self, runtime: Runtime, partner_keys: Keyring, rng: random.Random,
                 base_url: str) -> None:  # fmt: skip
        self.rt = runtime
        self.partner_keys = partner_keys
        self.rng = rng
        self.base_url = base_url
        self.clock = DemoClock(datetime.now(UTC) - timedelta(days=DAYS))
        self.filled = Filled()
        self.operations_made = 0

    @property
    def session(self) -> Session:
        return self._session

    def tell(self, tips: int) -> Filled:
        with self.rt.session_factory() as self._session:
            self._cast()
            self._agencies()
            tip_ids = self._tips(tips)
            referrals = self._triage(tip_ids)
            self._lifecycle(referrals)
            self._aftercare()
            self._feedback()
            self._onward()
            self.filled.counts = {
                "tips": len(tip_ids),
                "referrals": len(referrals),
                "children": self._count(Child),
                "operations": self._count(Operation),
            }
        return self.filled

    def _count(self, model: type[Child] | type[Operation]) -> int:
        return int(self.session.scalar(select(func.count()).select_from(model)) or 0)

    # -- who's who ----------------------------------------------------------------------------

    def _cast(self) -> None:
        audit = self.rt.audit(self.session)
        for name, regions in TEAMS:
            TeamService(self.session, audit=audit).add(
                name=name, country="PH", regions=regions, actor=ACTOR
            )
        for name, _ in UNITS.values():
            UnitService(self.session, audit=audit).add(
                name=name, country="PH", regions=[], actor=ACTOR
            )

    def _accounts(self) -> None:
        accounts = AccountService(
            self.session,
            box=self.rt.secret_box,
            hashing=self.rt.password_hashing,
            audit=self.rt.audit(self.session),
            clock=self.clock,
            approval=ApprovalRule(self.rt.settings.enrolment_approval),
        )
        for email, role, belongs in PEOPLE:
            kwargs: dict[str, Any] = {}
            if role in ("analyst", "lead"):
                kwargs["team"] = belongs
            elif role == "officer":
                kwargs["unit"] = belongs
            elif role == "partner":
                kwargs["agency_id"] = self.session.scalar(
                    select(Agency.id).where(Agency.name == belongs)
                )
            enrolment = accounts.create(email=email, role=role, actor=ACTOR, **kwargs)
            self.filled.accounts.append(
                Account(
                    email=email,
                    role=role,
                    enrolment_link=f"{self.base_url}/enrol?token={enrolment.token}",
                    awaiting_approval=enrolment.awaiting_approval,
                )
            )

    def person(self, email: str) -> User:
        user = self.session.scalar(select(User).where(User.email == email))
        assert user is not None  # noqa: S101 - made by _accounts
        return user

    # -- tips -------------------------------------------------------------------------------

    def _agencies(self) -> None:
        intake = self.session.scalar(
            select(IntakeKey.fingerprint).where(IntakeKey.retired_at.is_(None))
        )
        assert intake is not None  # noqa: S101 - `tipline init` made it
        self.intake = intake
        self.partner_keys.import_pinned_key(self.rt.keyring.export_public_key(intake),
                                            fingerprint=intake)  # fmt: skip
        self.senders: list[tuple[int, str]] = []
        service = AgencyService(self.session, keyring=self.rt.keyring, clock=self.clock,
                                audit=self.rt.audit(self.session))  # fmt: skip
        for index, (name, country) in enumerate(AGENCIES):
            fingerprint = self.partner_keys.generate_encryption_key(
                name=name, email=f"agency{index}@partners.example"
            )
            agency, _token = service.add(
                name=name,
                country=country,
                key_data=self.partner_keys.export_public_key(fingerprint).encode(),
                actor=ACTOR,
            )
            self.senders.append((agency.id, fingerprint))
        self._accounts()

    def _tips(self, count: int) -> list[str]:
        assert self.rt.blind_index is not None  # noqa: S101 - a full runtime (the CLI's)
        processor = TipProcessor(
            self.rt.session_factory,
            keyring=self.rt.keyring,
            blind_index=self.rt.blind_index,
            audit_key=self.rt.audit_key,
            clock=self.clock,
        )
        receiver = TipReceiver(self.session, queue=self.rt.queue, clock=self.clock)
        step = timedelta(days=DAYS - 20) / count
        ids = []
        for number in range(count):
            self.clock.moment += step * self.rng.uniform(0.5, 1.5)
            agency_id, fingerprint = self.rng.choice(self.senders)
            sealed = self.partner_keys.encrypt(
                json.dumps(self._document(number)).encode(), [self.intake], sign_with=fingerprint
            )
            tip_id = receiver.receive(agency_id, sealed.encode()).tip.id
            processor.process(tip_id)
            ids.append(tip_id)
        return ids

    def _document(self, number: int) -> dict[str, Any]:
        rng = self.rng
        regions = [region for _, team_regions in TEAMS for region in team_regions]
        region = rng.choice(OTHER_REGIONS) if rng.random() < 0.08 else rng.choice(regions)
        # A pool of values shared by a few tips each, so correlation finds something.
        handle = rng.randrange(number // 3 + 20)
        victims = [
            {"approx_age": rng.choice([None, *range(1, 17)]),
             "sex": rng.choice(["female", "male", "unknown"])}
            for _ in range(rng.choice([1, 1, 2, 3, 5]))
        ]  # fmt: skip
        document: dict[str, Any] = {
            "schema": "tipline.tip/1",
            "external_reference": f"DEMO-{number:05d}",
            "reported_at": self.clock.now().isoformat(),
            "summary": f"Fictional demo tip {number}: a report for training only.",
            "narrative": (
                "This tip is fictional: it was made by `tipline demo` to show how Tipline "
                "works. Nothing in it refers to a real person, account or place."
            ),
            "urgency": {
                "imminent_danger": rng.random() < 0.12,
                "ongoing_abuse": rng.random() < 0.4,
                "live_streaming": rng.random() < 0.2,
            },
            "location": {"country": "PH", "region": region},
            "offence_types": rng.sample(
                ["live_streaming_abuse", "csam_distribution", "grooming", "trafficking"],
                k=rng.choice([1, 1, 2]),
            ),
            "victims": victims,
            "suspects": [{"role": "facilitator", "description": "Fictional suspect."}],
            "selectors": [
                {
                    "type": "username",
                    "value": f"@demo_handle{handle}",
                    "platform": "ExampleChat",
                    "suspect": 0,
                },
                {"type": "email", "value": f"demo{handle}@example.com", "suspect": 0},
                # Addresses of the documentation range (RFC 5737): no real line can match.
                {"type": "ip", "value": f"203.0.113.{handle % 250 + 1}", "suspect": 0},
            ],  # fmt: skip
            "handling": {"tlp": rng.choice(["GREEN", "AMBER", "AMBER", "AMBER+STRICT", "RED"])},
        }
        if number % 37 == 36:
            # Now and then a partner's tooling leaves a field out: the tip is rejected, with
            # the reason the partner sees.
            del document["urgency"]
        return document

    # -- triage -----------------------------------------------------------------------------

    def _staff(self, team_id: int | None) -> tuple[User, User]:
        """A team's analyst and lead."""
        team = self.session.get(Team, team_id)
        lead = (
            "lea.luzon@centre.example"
            if team and team.name == "Luzon desk"
            else ("lou.visayas@centre.example")
        )
        analyst = (
            "ana.luzon@centre.example" if lead.startswith("lea") else ("vic.visayas@centre.example")
        )
        return self.person(analyst), self.person(lead)

    def _desk(self) -> TriageDesk:
        return TriageDesk(self.session, audit=self.rt.audit(self.session), clock=self.clock)

    def _triage(self, tip_ids: list[str]) -> list[int]:
        referrals: list[int] = []
        by_team: dict[int, list[int]] = {}
        recent = datetime.now(UTC) - timedelta(days=10)
        for tip_id in tip_ids:
            self.session.expire_all()
            tip = self.session.get(Tip, tip_id)
            if tip is None or tip.status != TipStatus.IN_TRIAGE or tip.team_id is None:
                continue  # unrouted: left for leads
            if tip.received_at > recent:
                continue  # the last days' tips wait in the queue
            analyst, _ = self._staff(tip.team_id)
            # Decided some hours after it arrived (a P1 sooner).
            hours = self.rng.uniform(0.2, 1) if tip.priority == "P1" else self.rng.uniform(2, 60)
            self.clock.moment = tip.received_at + timedelta(hours=hours)
            roll = self.rng.random()
            if roll < 0.45:
                referral = self._desk().accept(analyst, tip_id, address=None)
                referrals.append(referral.id)
                by_team.setdefault(tip.team_id, []).append(referral.id)
            elif roll < 0.55 and by_team.get(tip.team_id):
                target = self.session.get(Referral, self.rng.choice(by_team[tip.team_id]))
                assert target is not None  # noqa: S101
                self._desk().merge(analyst, tip_id, target.reference, address=None)
            elif roll < 0.75:
                self._desk().decline(
                    analyst, tip_id, self.rng.choice(list(DeclineReason)), address=None
                )
            elif roll < 0.85:
                self._desk().claim(analyst, tip_id, address=None)
        return referrals

    # -- referrals and operations -------------------------------------------------------------

    def _casework(self) -> Casework:
        return Casework(self.session, audit=self.rt.audit(self.session), clock=self.clock,
                        keyring=self.rt.keyring)  # fmt: skip

    def _move(self, who: User, referral_id: int, name: str, **values: str) -> None:
        self.clock.advance(days=self.rng.uniform(1, 6))
        self._casework().advance(who, referral_id, name, values)

    def _consented(self, lead: User, referral_id: int, unit: Unit) -> bool:
        """Whether the agencies that marked the referral's tips TLP:RED or AMBER+STRICT
        consented to the hand-over: the lead asks each through the message channel, the
        agency's reply is sealed with its key and checked as a real one is, and the lead
        records it (now and then an agency has not answered yet)."""
        referral = self.session.get(Referral, referral_id)
        assert referral is not None  # noqa: S101
        to = Recipient(RecipientKind.UNIT, unit.id, unit.name)
        fingerprints = dict(self.senders)
        audit = self.rt.audit(self.session)
        consents = Consents(self.session, audit=audit, clock=self.clock, keyring=self.rt.keyring)
        for restriction in restrictions(self.session, referral_id):
            self.clock.advance(hours=self.rng.uniform(1, 8))
            consent = consents.request(lead, referral, restriction.agency_id, to, "", address=None)
            if self.rng.random() < 0.3:
                return False
            self.clock.advance(days=self.rng.uniform(0.5, 3))
            request = self.session.get(Message, consent.request_message_id)
            assert request is not None  # noqa: S101
            answer = self.partner_keys.encrypt(
                b"Fictional answer: we consent to this hand-over.",
                [self.intake],
                sign_with=fingerprints[restriction.agency_id],
            )
            reply = Correspondence(self.session, audit=audit, clock=self.clock).receive_reply(
                restriction.agency_id, request.tip_id, answer.encode()
            )
            ReplyChecker(self.session, audit=audit, clock=self.clock,
                         keyring=self.rt.keyring).check_reply(reply.id)  # fmt: skip
            consents.record(lead, referral, consent.id, granted=True, reply_id=reply.id,
                            address=None)  # fmt: skip
        return True

    def _lifecycle(self, referrals: list[int]) -> None:
        weights = [weight for _, weight in DESTINATIONS]
        into_operations: dict[int, list[int]] = {}
        for referral_id in referrals:
            referral = self.session.get(Referral, referral_id)
            assert referral is not None  # noqa: S101
            analyst, lead = self._staff(referral.team_id)
            team = self.session.get(Team, referral.team_id)
            assert team is not None  # noqa: S101 - accepted by a team
            unit_name, officer_email = UNITS[team.name]
            unit = self.session.scalar(select(Unit).where(Unit.name == unit_name))
            officer = self.person(officer_email)
            destination = self.rng.choices([d for d, _ in DESTINATIONS], weights)[0]
            self.clock.moment = referral.created_at
            if destination == ReferralStage.ASSESSMENT:
                continue
            if destination == ReferralStage.CLOSED:
                reason = self.rng.choice(["no_offence", "insufficient_information", "duplicate"])
                self._move(lead, referral_id, "close_early", close_reason=reason)
                continue
            self._move(analyst, referral_id, "investigate",
                       note="Fictional note: selectors checked against open sources.")  # fmt: skip
            if destination == ReferralStage.INVESTIGATION:
                continue
            assert unit is not None  # noqa: S101
            if not self._consented(lead, referral_id, unit):
                continue  # waiting for a partner's consent to hand it over
            self._move(lead, referral_id, "hand_over", unit_id=str(unit.id))
            if destination == ReferralStage.HANDOVER_PENDING:
                continue
            if self.rng.random() < 0.15:
                self._move(officer, referral_id, "refuse_handover",
                           note="Fictional: outside our area; please re-assign.")  # fmt: skip
                continue
            self._move(officer, referral_id, "accept_handover",
                       unit_reference=f"DEMO-{unit.id}-{referral_id:04d}")  # fmt: skip
            if destination == ReferralStage.WITH_UNIT:
                continue
            into_operations.setdefault(referral.team_id or 0, []).append(referral_id)
        for team_referrals in into_operations.values():
            self._operations(team_referrals)

    def _operations(self, referral_ids: list[int]) -> None:
        operations = Operations(self.session, audit=self.rt.audit(self.session), clock=self.clock,
                                casework=self._casework())  # fmt: skip
        groups = list(_chunks(referral_ids, self.rng))
        # Every status early on (a small demo has a handful of operations), then mostly done.
        statuses = ["debriefed", "conducted", "approved", "debriefed", "planning", "cancelled",
                    "debriefed", "debriefed", "conducted", "debriefed"]  # fmt: skip
        for group in groups:
            number = self.operations_made
            self.operations_made += 1
            first = self.session.get(Referral, group[0])
            assert first is not None  # noqa: S101
            _, lead = self._staff(first.team_id)
            unit_id = first.unit_id
            officer = self.session.scalar(select(User).where(User.unit_id == unit_id))
            self.clock.moment = max(self.session.get(Referral, r).stage_entered_at for r in group)  # type: ignore[union-attr]
            self.clock.advance(days=self.rng.uniform(3, 20))
            operation = operations.plan(
                lead, referral_ids=group, lead_unit_id=unit_id,
                planned_for=(self.clock.now() + timedelta(days=14)).date().isoformat(),
                region=self.rng.choice(TEAMS[0][1] if "lea" in lead.email else TEAMS[1][1]),
            )  # fmt: skip
            status = statuses[number % len(statuses)]
            if status == "planning":
                continue
            if status == "cancelled":
                operations.step(lead, operation.id, "cancel")
                continue
            self.clock.advance(days=self.rng.uniform(1, 5))
            operations.step(lead, operation.id, "approve")
            if status == "approved":
                continue
            self.clock.advance(days=self.rng.uniform(10, 16))
            operations.step(officer or lead, operation.id, "conduct")
            if status == "conducted":
                continue
            self.clock.advance(days=self.rng.uniform(1, 4))
            outcomes = {r: Outcome(str(self.rng.randint(0, 5)), str(self.rng.randint(0, 2)))
                        for r in group}  # fmt: skip
            operations.step(officer or lead, operation.id, "debrief", outcomes=outcomes)
            for referral_id in group:
                referral = self.session.get(Referral, referral_id)
                assert referral is not None  # noqa: S101
                if referral.children_safeguarded:
                    if self.rng.random() < 0.8:
                        self._move(lead, referral_id, "begin_aftercare")
                else:
                    self._move(lead, referral_id, "close")

    # -- aftercare ------------------------------------------------------------------------------

    def _aftercare(self) -> None:
        self.clock.moment = datetime.now(UTC) - timedelta(days=20)
        care = Aftercare(self.session, audit=self.rt.audit(self.session), clock=self.clock)
        caseworkers = [self.person("cas@care.example"), self.person("cam@care.example")]
        referrals = self.session.scalars(
            select(Referral)
            .where(Referral.children_safeguarded > 0, Referral.stage.in_(RECORDING_STAGES))
            .order_by(Referral.id)
        ).all()
        for referral in referrals:
            _, lead = self._staff(referral.team_id)
            for _ in range(referral.children_safeguarded or 0):
                caseworker = self.rng.choice(caseworkers)
                child = care.record_child(
                    lead, referral.id, age=str(self.rng.randint(1, 17)),
                    sex=self.rng.choice(["female", "male", "undisclosed"]),
                    caseworker_id=str(caseworker.id),
                )  # fmt: skip
                today = self.clock.now().date()
                care.record_milestone(caseworker, child.id, kind="story_documented",
                                      done_on=today.isoformat())  # fmt: skip
                for kind in self.rng.sample(MILESTONES[1:], k=2):
                    due = today + timedelta(days=self.rng.randint(-5, 40))
                    care.plan_milestone(caseworker, child.id, kind=kind, due_on=due.isoformat())
                placement = self.rng.choice(["government_shelter", "ngo_shelter", "foster_family"])
                care.set_placement(caseworker, child.id, placement)

    def _feedback(self) -> None:
        """Leads release feedback on most referrals past their operation, with the outcome."""
        self.clock.moment = datetime.now(UTC) - timedelta(days=10)
        desk = FeedbackDesk(self.session, audit=self.rt.audit(self.session), clock=self.clock,
                            keyring=self.rt.keyring)  # fmt: skip
        done = self.session.scalars(
            select(Referral).where(Referral.children_safeguarded.is_not(None)).order_by(Referral.id)
        ).all()
        for referral in done:
            if self.rng.random() < 0.3:
                continue  # not every lead has written back yet
            _, lead = self._staff(referral.team_id)
            text = desk.suggestion(referral) + " Thank you for your report."
            for agency_id, _name in desk.recipients(referral):
                shown = desk.draft(lead, referral.id, agency_id, text, include_outcome=True)
                desk.release(lead, referral.id, agency_id, text, include_outcome=True,
                             version=shown.version, address=None)  # fmt: skip

    def _onward(self) -> None:
        """A centre abroad, registered with its key (none reachable: its packages are sealed to
        be sent by hand), and a package for it from a referral still under investigation."""
        fingerprint = self.partner_keys.generate_encryption_key(
            name=ABROAD[0], email="centre@abroad.example"
        )
        service = AgencyService(self.session, keyring=self.rt.keyring, clock=self.clock,
                                audit=self.rt.audit(self.session))  # fmt: skip
        abroad, _token = service.add(
            name=ABROAD[0],
            country=ABROAD[1],
            key_data=self.partner_keys.export_public_key(fingerprint).encode(),
            actor=ACTOR,
        )
        candidates = self.session.scalars(
            select(Referral)
            .where(Referral.stage == ReferralStage.INVESTIGATION.value)
            .order_by(Referral.id)
        ).all()
        packages = OnwardPackages(self.session, audit=self.rt.audit(self.session),
                                  clock=self.clock, keyring=self.rt.keyring)  # fmt: skip
        for referral in candidates:
            if restrictions(self.session, referral.id):
                continue  # would need the marking agencies' consent first
            _, lead = self._staff(referral.team_id)
            summary = "Fictional: a suspect of this case moved abroad."
            packages.export(lead, referral.id, abroad.id, summary, address=None)
            return


def _chunks(items: list[int], rng: random.Random) -> Iterator[list[int]]:
    """``items`` in groups of one to three (an operation acts on several referrals)."""
    index = 0
    while index < len(items):
        size = rng.choice([1, 1, 2, 3])
        yield items[index : index + size]
        index += size
