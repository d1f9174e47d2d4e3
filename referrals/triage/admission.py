"""Admitting a processed tip to triage: correlate, score, time and route it.

Called by processing inside the transaction that moves the tip to ``in_triage``, so a tip is
never in triage without its links, its priority, its SLA clock and its team (a worker killed
half-way leaves none of them, and the tip is processed again). Re-scoring after a change of the
rules goes through the same steps (``rescore``), so a tip scores the same however it got there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.intake.models import Tip, TipSelector, TipStatus
from referrals.triage.correlation import Correlator, linked_referral_count, linked_tip_count
from referrals.triage.priority import Assessment, TriageFacts, assess
from referrals.triage.routing import route
from referrals.triage.rules import RuleBook, RuleVersion


@dataclass(frozen=True)
class Admitted:
    priority: str
    linked_tips: int
    team_id: int | None


class TriageAdmission:
    """Args:
    session: processing's session, inside its transaction (nothing is committed here).
    audit: the audit log in that session.
    clock: the clock.
    """

    def __init__(self, session: Session, *, audit: AuditLog, clock: Clock) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock

    def admit(self, tip_id: str, selectors: Mapping[str, str]) -> Admitted:
        """The tip (its facts already written in this transaction) with its selectors'
        blind indexes (index → type): register and link them, then score, time and route."""
        rules = RuleBook(self.session, audit=self.audit, clock=self.clock).current()
        Correlator(self.session, clock=self.clock).register(
            tip_id, selectors, cap=rules.rules.correlation_cap
        )
        tip = self.session.get(Tip, tip_id, populate_existing=True)
        assert tip is not None  # noqa: S101 - the caller just updated it
        facts = self._facts(tip)
        assessment = assess(facts, rules.rules)
        team_id = route(self.session, country=tip.country, region=tip.region)
        # The clock starts when the tip reached triage (the same instant processing wrote).
        since = tip.processed_at or self.clock.now()
        self._write(tip, assessment, rules, team_id=team_id, since=since)
        return Admitted(
            priority=assessment.priority,
            linked_tips=facts.linked_tips,
            team_id=team_id,
        )

    def rescore(self, tip: Tip, rules: RuleVersion) -> bool:
        """Score an open tip again under ``rules`` (its team stays). Returns whether its
        priority changed."""
        before = tip.priority
        assessment = assess(self._facts(tip), rules.rules)
        since = tip.processed_at or tip.received_at
        self._write(tip, assessment, rules, team_id=tip.team_id, since=since)
        return assessment.priority != before

    def _facts(self, tip: Tip) -> TriageFacts:
        indexed = self.session.scalar(
            select(func.count()).select_from(TipSelector).where(TipSelector.tip_id == tip.id)
        )
        facts = TriageFacts(
            imminent_danger=bool(tip.imminent_danger),
            ongoing_abuse=bool(tip.ongoing_abuse),
            live_streaming=bool(tip.live_streaming),
            youngest_victim_age=tip.youngest_victim_age,
            victim_count=tip.victim_count or 0,
            location_precision=tip.location_precision or "country",
            selectors=int(indexed or 0) + (tip.unindexed_selectors or 0),
            tlp=tip.tlp,
            linked_tips=linked_tip_count(self.session, tip.id),
            linked_referrals=linked_referral_count(self.session, tip.id),
        )
        return facts

    def _write(
        self,
        tip: Tip,
        assessment: Assessment,
        rules: RuleVersion,
        *,
        team_id: int | None,
        since: datetime,
    ) -> None:
        due = since + rules.rules.sla(assessment.priority)
        now = self.clock.now()
        self.session.execute(
            update(Tip)
            .where(Tip.id == tip.id, Tip.status == TipStatus.IN_TRIAGE)
            .values(
                priority=assessment.priority,
                priority_score=assessment.score,
                priority_reasons=list(assessment.reasons),
                rules_version=rules.version,
                sla_due_at=due,
                # A new clock that is not yet past clears an earlier breach.
                sla_breached_at=tip.sla_breached_at if due <= now else None,
                team_id=team_id,
            )
            .execution_options(synchronize_session="fetch")
        )
