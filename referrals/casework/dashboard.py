"""The lead's dashboard: where the team's referrals stand and what became of them.

Every figure is one query over indexed columns of the team's rows (referrals by team and stage,
tips by team, operations by team and status, referrals with an outcome); nothing reads tip
content, and nothing here names a person. At national volume all of them together take about
half a second, so the page does not compute them per request: it reads the team's snapshot
(``DashboardSnapshot``, one row), which the workers compute again every minute
(``refresh_all``), and computes it itself only when it is older than ``FRESH`` (the workers
are down, or the team is new).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from referrals.accounts.models import Team
from referrals.aftercare.services import counts as aftercare_counts
from referrals.casework.lifecycle import STAGE_SLA
from referrals.casework.models import (
    DashboardSnapshot,
    Referral,
    ReferralAgency,
    ReferralStage,
)
from referrals.clock import Clock
from referrals.intake.models import Agency, Tip, TipStatus
from referrals.operations.models import Operation, OperationStatus

MONTHS = 12
#: How old a snapshot may be before the page computes the figures itself.
FRESH = timedelta(minutes=2)


@dataclass(frozen=True)
class StageFigures:
    stage: ReferralStage
    referrals: int
    over_sla: int  # in this stage for longer than its SLA (lifecycle.STAGE_SLA)
    oldest_since: datetime | None


@dataclass(frozen=True)
class FunnelStep:
    label: str
    count: int


@dataclass(frozen=True)
class MonthOutcome:
    month: date  # its first day
    operations: int
    children_safeguarded: int
    suspects_arrested: int


@dataclass(frozen=True)
class GroupOutcome:
    name: str
    referrals: int
    children_safeguarded: int
    suspects_arrested: int


@dataclass(frozen=True)
class Dashboard:
    computed_at: datetime
    stages: list[StageFigures]
    overdue_handovers: int
    overdue_tips: int
    overdue_milestones: int  # of children in care, counted (the lead sees no child)
    funnel: list[FunnelStep]
    median_days_tip_to_operation: float | None
    months: list[MonthOutcome]
    by_agency: list[GroupOutcome]
    by_region: list[GroupOutcome]


class LeadDashboard:
    """The figures of one team's dashboard.

    Args:
        session: the database session (read only).
        clock: the clock ("now" for ageing, overdue and the last twelve months).
    """

    def __init__(self, session: Session, *, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def current(self, team_id: int) -> Dashboard:
        """The team's figures: its snapshot if fresh, else computed now (and kept)."""
        snapshot = self.session.get(DashboardSnapshot, team_id)
        if snapshot is not None and self.clock.now() - snapshot.computed_at <= FRESH:
            return from_json(snapshot.figures)
        return self.refresh(team_id)

    def refresh(self, team_id: int) -> Dashboard:
        """Compute the team's figures and keep them as its snapshot (committed)."""
        figures = self.for_team(team_id)
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        values = {"team_id": team_id, "computed_at": figures.computed_at,
                  "figures": to_json(figures)}  # fmt: skip
        upsert = dialect.insert(DashboardSnapshot).values(**values)
        self.session.execute(
            upsert.on_conflict_do_update(
                index_elements=[DashboardSnapshot.team_id],
                set_={
                    "computed_at": upsert.excluded.computed_at,
                    "figures": upsert.excluded.figures,
                },
            )  # fmt: skip
        )
        self.session.commit()
        return figures

    def refresh_all(self) -> int:
        """Every team's snapshot (the workers' maintenance, every minute). Returns how many."""
        teams = list(self.session.scalars(select(Team.id).order_by(Team.id)))
        for team_id in teams:
            self.refresh(team_id)
        return len(teams)

    def for_team(self, team_id: int) -> Dashboard:
        """The team's figures, computed now."""
        now = self.clock.now()
        stages = self._stages(team_id, now)
        by_stage = {figures.stage: figures.referrals for figures in stages}
        care = aftercare_counts(self.session, team_id, now.date())
        return Dashboard(
            computed_at=now,
            stages=stages,
            overdue_handovers=self._count(
                select(func.count()).select_from(Referral).where(
                    Referral.team_id == team_id,
                    Referral.stage == ReferralStage.HANDOVER_PENDING.value,
                    Referral.handover_due_at < now,
                )
            ),
            overdue_tips=self._count(
                select(func.count()).select_from(Tip).where(
                    Tip.team_id == team_id,
                    Tip.status == TipStatus.IN_TRIAGE,
                    Tip.sla_due_at < now,
                )
            ),
            overdue_milestones=care.milestones_overdue,
            funnel=self._funnel(team_id, sum(by_stage.values()), care.children_in_care),
            median_days_tip_to_operation=self._median_days(team_id, now),
            months=self._months(team_id, now),
            by_agency=self._by_agency(team_id),
            by_region=self._by_region(team_id),
        )  # fmt: skip

    def _count(self, query: Select[Any]) -> int:
        return int(self.session.scalar(query) or 0)

    def _stages(self, team_id: int, now: datetime) -> list[StageFigures]:
        # One pass over the team's rows of the (team, stage, stage_entered_at) index: each
        # stage's SLA in one CASE.
        late = case(
            *(
                (and_(Referral.stage == stage.value, Referral.stage_entered_at < now - sla), 1)
                for stage, sla in STAGE_SLA.items()
            ),
            else_=0,
        )
        rows = self.session.execute(
            select(
                Referral.stage,
                func.count(),
                func.sum(late),
                func.min(Referral.stage_entered_at),
            )
            .where(Referral.team_id == team_id)
            .group_by(Referral.stage)
        ).all()
        found = {row[0]: row for row in rows}
        return [
            StageFigures(
                stage=stage,
                referrals=int(found[stage][1]) if stage in found else 0,
                over_sla=int(found[stage][2] or 0) if stage in found else 0,
                oldest_since=found[stage][3] if stage in found else None,
            )
            for stage in ReferralStage
        ]

    def _funnel(self, team_id: int, referrals: int, in_aftercare: int) -> list[FunnelStep]:
        tips = self._count(select(func.count()).select_from(Tip).where(Tip.team_id == team_id))
        done = (OperationStatus.CONDUCTED.value, OperationStatus.DEBRIEFED.value)
        operations, children = self.session.execute(
            select(func.count(), func.coalesce(func.sum(Operation.children_safeguarded), 0)).where(
                Operation.team_id == team_id, Operation.status.in_(done)
            )
        ).one()
        return [
            FunnelStep("Tips routed to the team", tips),
            FunnelStep("Referrals", referrals),
            FunnelStep("Operations conducted", int(operations or 0)),
            FunnelStep("Children safeguarded", int(children or 0)),
            FunnelStep("Children in aftercare", in_aftercare),
        ]

    def _median_days(self, team_id: int, now: datetime) -> float | None:
        """From a referral's first tip to its operation, over the last twelve months."""
        rows = self.session.execute(
            select(Operation.conducted_at, Referral.first_tip_at)
            .join(Referral, Referral.operation_id == Operation.id)
            .where(
                Operation.team_id == team_id,
                Operation.conducted_at.is_not(None),
                Operation.conducted_at >= now - timedelta(days=366),
            )
        ).all()
        days = [
            (conducted - received).total_seconds() / 86400
            for conducted, received in rows
            if conducted is not None and received is not None
        ]
        return round(statistics.median(days), 1) if days else None

    def _months(self, team_id: int, now: datetime) -> list[MonthOutcome]:
        first = _month(now)
        for _ in range(MONTHS - 1):
            first = _month(datetime.combine(first - timedelta(days=1), datetime.min.time()))
        rows = self.session.execute(
            select(
                Operation.debriefed_at, Operation.children_safeguarded, Operation.suspects_arrested
            ).where(
                Operation.team_id == team_id,
                Operation.status == OperationStatus.DEBRIEFED.value,
                Operation.debriefed_at >= datetime.combine(first, datetime.min.time(), now.tzinfo),
            )
        ).all()
        totals: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
        for debriefed_at, children, suspects in rows:
            if debriefed_at is None:  # pragma: no cover - the query asks for it
                continue
            total = totals[_month(debriefed_at)]
            total[0] += 1
            total[1] += children or 0
            total[2] += suspects or 0
        months = []
        month = first
        for _ in range(MONTHS):
            operations, children, suspects = totals.get(month, [0, 0, 0])
            months.append(MonthOutcome(month, operations, children, suspects))
            month = _month(datetime.combine(month + timedelta(days=32), datetime.min.time()))
        return months

    def _by_agency(self, team_id: int) -> list[GroupOutcome]:
        """Outcomes by the agencies whose tips the referral holds (a referral merged from two
        agencies' tips counts for both), added up in the database."""
        rows = self.session.execute(
            select(
                Agency.name,
                func.count(),
                func.sum(Referral.children_safeguarded),
                func.sum(Referral.suspects_arrested),
            )
            .select_from(Referral)
            .join(ReferralAgency, ReferralAgency.referral_id == Referral.id)
            .join(Agency, Agency.id == ReferralAgency.agency_id)
            .where(Referral.team_id == team_id, Referral.children_safeguarded.is_not(None))
            .group_by(Agency.name)
        ).all()
        return sorted(
            (GroupOutcome(name, int(n), int(c or 0), int(a or 0)) for name, n, c, a in rows),
            key=lambda group: (-group.children_safeguarded, group.name),
        )

    def _by_region(self, team_id: int) -> list[GroupOutcome]:
        rows = self.session.execute(
            select(
                Operation.country,
                Operation.region,
                Operation.children_safeguarded,
                Operation.suspects_arrested,
            ).where(
                Operation.team_id == team_id,
                Operation.status == OperationStatus.DEBRIEFED.value,
            )
        ).all()
        return _grouped(
            (f"{region}, {country}" if region else f"{country} (no region given)", c, s)
            for country, region, c, s in rows
        )


def _grouped(rows: Iterable[tuple[str, int | None, int | None]]) -> list[GroupOutcome]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for name, children, suspects in rows:
        total = totals[name]
        total[0] += 1
        total[1] += children or 0
        total[2] += suspects or 0
    return sorted(
        (GroupOutcome(name, *total) for name, total in totals.items()),
        key=lambda group: (-group.children_safeguarded, group.name),
    )


def _month(moment: datetime) -> date:
    return date(moment.year, moment.month, 1)


def to_json(figures: Dashboard) -> dict[str, Any]:
    """The figures as JSON values (dates and times in ISO 8601)."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime | date):
            return value.isoformat()
        if isinstance(value, list):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value

    return {key: plain(value) for key, value in asdict(figures).items()}


def from_json(data: dict[str, Any]) -> Dashboard:
    """The figures kept by ``to_json``."""

    def moment(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    return Dashboard(
        computed_at=datetime.fromisoformat(data["computed_at"]),
        stages=[
            StageFigures(
                ReferralStage(s["stage"]), s["referrals"], s["over_sla"], moment(s["oldest_since"])
            )
            for s in data["stages"]
        ],  # fmt: skip
        overdue_handovers=data["overdue_handovers"],
        overdue_tips=data["overdue_tips"],
        overdue_milestones=data["overdue_milestones"],
        funnel=[FunnelStep(**step) for step in data["funnel"]],
        median_days_tip_to_operation=data["median_days_tip_to_operation"],
        months=[
            MonthOutcome(
                date.fromisoformat(m["month"]),
                m["operations"],
                m["children_safeguarded"],
                m["suspects_arrested"],
            )
            for m in data["months"]
        ],  # fmt: skip
        by_agency=[GroupOutcome(**group) for group in data["by_agency"]],
        by_region=[GroupOutcome(**group) for group in data["by_region"]],
    )
