"""The rules that score, time and correlate tips: shipped defaults, versions admins add.

Every number here is one an administrator can change on the rules page. A change adds a
version (never edits one); each tip's score names the version that gave it, and open tips are
re-scored by a job (``referrals.triage.tasks.rescore_open_tips``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.triage.models import TriageRuleSet

PRIORITIES = ("P1", "P2", "P3", "P4")


class InvalidRules(ValueError):
    """A rule set that cannot be used; the message names the rule and the allowed range."""


class RulesChangedMeanwhile(RuntimeError):
    """Another administrator added a version since this change was started."""


@dataclass(frozen=True)
class TriageRules:
    """Weights (points a fact adds), thresholds, SLA hours and the correlation cap.

    A tip with no place finer than its country and no identifier at all is P4
    (informational) whatever its points: there is nothing to act on. Otherwise its points
    give P1 at ``p1_threshold`` or more, P2 at ``p2_threshold`` or more, else P3.
    """

    imminent_danger: int = 60
    live_streaming: int = 30
    ongoing_abuse: int = 25
    # The youngest victim's age, by band (only the band that applies counts).
    victim_aged_0_5: int = 25
    victim_aged_6_12: int = 15
    victim_aged_13_17: int = 5
    # How many victims (only the band that applies counts).
    victims_2_to_4: int = 10
    victims_5_or_more: int = 20
    location_city: int = 10
    location_region: int = 5
    matches_earlier_tips: int = 10
    # A tip about something the centre is already working on.
    matches_open_referrals: int = 20
    # The partner's Traffic Light Protocol marking: the most guarded ones signal live work.
    tlp_red: int = 10
    tlp_amber_strict: int = 5
    p1_threshold: int = 60
    p2_threshold: int = 30
    # Hours allowed for the first triage decision, by priority.
    sla_hours_p1: int = 1
    sla_hours_p2: int = 24
    sla_hours_p3: int = 168
    sla_hours_p4: int = 720
    # A value carried by more tips than this stops linking (over-correlating).
    correlation_cap: int = 50

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidRules(f"{field.name} must be a whole number")
            low, high = _RANGES.get(field.name, (0, 1000))
            if not low <= value <= high:
                raise InvalidRules(f"{field.name} must be between {low} and {high}")
        if self.p2_threshold >= self.p1_threshold:
            raise InvalidRules("p2_threshold must be lower than p1_threshold")
        hours = [self.sla_hours_p1, self.sla_hours_p2, self.sla_hours_p3, self.sla_hours_p4]
        if hours != sorted(hours):
            raise InvalidRules("a more urgent priority cannot have a longer SLA")

    def sla(self, priority: str) -> timedelta:
        hours = {
            "P1": self.sla_hours_p1,
            "P2": self.sla_hours_p2,
            "P3": self.sla_hours_p3,
            "P4": self.sla_hours_p4,
        }[priority]
        return timedelta(hours=hours)

    def as_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TriageRules:
        """Rules from a stored version: a rule added to the code since then takes its
        default; a rule the code no longer knows is ignored."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in data.items() if name in known})


_RANGES = {
    "p1_threshold": (1, 1000),
    "p2_threshold": (1, 1000),
    "sla_hours_p1": (1, 8760),
    "sla_hours_p2": (1, 8760),
    "sla_hours_p3": (1, 8760),
    "sla_hours_p4": (1, 8760),
    "correlation_cap": (2, 100_000),
}


@dataclass(frozen=True)
class RuleVersion:
    version: int
    rules: TriageRules


class RuleBook:
    """The versions of the triage rules.

    Args:
        session: the caller's session (``current`` works inside the caller's transaction).
        audit: the audit log, in the same session.
        clock: the clock.
    """

    def __init__(self, session: Session, *, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock

    def current(self) -> RuleVersion:
        """The latest version; the shipped defaults become version 1 the first time any is
        needed (in a savepoint, so two workers racing to make it do not fail the caller)."""
        found = self._latest()
        if found is not None:
            return found
        try:
            with self.session.begin_nested():
                self.session.add(
                    TriageRuleSet(
                        version=1,
                        rules=TriageRules().as_json(),
                        created_at=self.clock.now(),
                        created_by="system",
                    )
                )
        except IntegrityError:
            pass  # another process made it first
        made = self._latest()
        assert made is not None  # noqa: S101 - made above, by us or another process
        return made

    def history(self) -> list[TriageRuleSet]:
        return list(
            self.session.scalars(select(TriageRuleSet).order_by(TriageRuleSet.version.desc()))
        )

    def change(self, rules: TriageRules, *, based_on: int, actor: str, address: str | None) -> int:
        """Add a version (audited, in the caller's transaction, not committed here).

        Args:
            rules: the new rules.
            based_on: the version the administrator was looking at: if another was added
                since, nothing is changed (their edits would silently undo the other's).
            actor, address: who changes them, from where (for the audit log).

        Returns:
            The new version's number.

        Raises:
            RulesChangedMeanwhile: ``based_on`` is no longer the latest version.
        """
        latest = self.current()
        if latest.version != based_on:
            raise RulesChangedMeanwhile(
                f"version {latest.version} was added since you opened version {based_on}"
            )
        version = latest.version + 1
        changed = sorted(
            name
            for name, value in rules.as_json().items()
            if latest.rules.as_json().get(name) != value
        )
        try:
            with self.session.begin_nested():
                self.session.add(
                    TriageRuleSet(
                        version=version,
                        rules=rules.as_json(),
                        created_at=self.clock.now(),
                        created_by=actor,
                    )
                )
        except IntegrityError:
            raise RulesChangedMeanwhile(
                f"another version {version} was added at the same time"
            ) from None
        self.audit.record(
            "triage_rules.changed",
            actor=actor,
            subject=f"triage_rules:{version}",
            address=address,
            details={"version": version, "changed": ", ".join(changed)[:200] or None},
        )
        return version

    def _latest(self) -> RuleVersion | None:
        row = self.session.scalars(
            select(TriageRuleSet).order_by(TriageRuleSet.version.desc()).limit(1)
        ).first()
        if row is None:
            return None
        return RuleVersion(version=row.version, rules=TriageRules.from_json(row.rules))
