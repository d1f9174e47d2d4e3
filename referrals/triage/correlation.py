"""Correlation (deconfliction) on blind indexes: which tips already held share a selector value.

Every agency's tips are matched against every other's; nothing of it reaches partners (it runs
in the worker, after the receipt, and no partner-facing answer reads these tables).

Junk and shared values must not drown the links: a value an administrator excluded never
links, and a value carried by more tips than the rules' cap stops linking and is shown as
over-correlating until an administrator excludes or allows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, String, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crypto import BlindIndex
from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.database import UTCDateTime
from referrals.intake.models import Tip, TipSelector
from referrals.triage.models import SelectorRule, SelectorValue, TipLink

#: The most tips one allowed value links a new tip to (the most recent).
ALLOWED_LINKS = 500


@dataclass(frozen=True)
class Correlation:
    """What registering a tip's selectors found."""

    linked_tips: int  # distinct earlier tips it now links to
    over_correlating: int  # of its values, those past the cap that nobody has ruled on
    excluded: int  # of its values, those an administrator excluded


class Correlator:
    """Registers a processed tip's selectors and links it to the earlier tips sharing them.

    Runs in the caller's transaction (processing's), so the tip, its selectors and its links
    commit together.
    """

    def __init__(self, session: Session, *, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def register(self, tip_id: str, selectors: Mapping[str, str], *, cap: int) -> Correlation:
        """Add the tip's selectors (blind index → selector type) and its links.

        Each value's counter is bumped first, in one statement whose rows come in a fixed
        order: on PostgreSQL that takes each value's row lock until commit, so of two tips
        sharing a value processed at once the later waits, then sees the earlier's selectors
        and links to it (neither can miss the other), and two tips sharing several values
        cannot deadlock.
        """
        now = self.clock.now()
        counts = self._count(selectors, now) if selectors else {}
        # Core INSERTs, not ORM objects: a tip sharing busy values writes hundreds of links,
        # and building an object for each cost more than GnuPG's whole work on the tip.
        if selectors:
            self.session.execute(
                insert(TipSelector),
                [
                    {"tip_id": tip_id, "selector_type": kind, "blind_index": index}
                    for index, kind in selectors.items()
                ],
            )
        # Links are written for excluded values too (at most the cap's worth): an exclusion
        # hides them when read, and clearing it brings them back. A value past the cap writes
        # none (that is what the cap is for) unless an administrator allowed it; then the most
        # recent ALLOWED_LINKS tips carrying it, so one value cannot make a tip's processing
        # unbounded.
        linkable = [
            index
            for index, (count, rule) in counts.items()
            if rule == SelectorRule.ALLOWED or count <= cap
        ]
        # Most values are carried by few tips: all their earlier tips are linked by one cached
        # statement. A value carried by more than ALLOWED_LINKS tips (allowed past the cap, or
        # under a cap set that high) links its most recent ALLOWED_LINKS, a statement each.
        # Each statement returns what it wrote, to be counted.
        few = [index for index in linkable if counts[index][0] <= ALLOWED_LINKS]
        many = [index for index in linkable if counts[index][0] > ALLOWED_LINKS]
        columns = ["tip_id", "earlier_tip_id", "blind_index", "selector_type", "linked_at"]
        statements = []
        if few:
            statements.append(
                select(
                    literal(tip_id, String),
                    TipSelector.tip_id,
                    TipSelector.blind_index,
                    TipSelector.selector_type,
                    literal(now, UTCDateTime()),
                ).where(TipSelector.blind_index.in_(few), TipSelector.tip_id != tip_id)
            )
        statements += [
            select(
                literal(tip_id, String),
                TipSelector.tip_id,
                TipSelector.blind_index,
                TipSelector.selector_type,
                literal(now, UTCDateTime()),
            )
            .where(TipSelector.blind_index == index, TipSelector.tip_id != tip_id)
            .order_by(TipSelector.id.desc())
            .limit(ALLOWED_LINKS)
            for index in many
        ]
        linked: set[str] = set()
        for earlier in statements:
            written = self.session.execute(
                insert(TipLink)
                .from_select(columns, earlier)
                .returning(TipLink.earlier_tip_id, TipLink.blind_index)
            )
            linked.update(
                row.earlier_tip_id
                for row in written
                if counts[row.blind_index][1] != SelectorRule.EXCLUDED
            )
        return Correlation(
            linked_tips=len(linked),
            over_correlating=sum(
                1 for count, rule in counts.values() if rule is None and count > cap
            ),
            excluded=sum(1 for _, rule in counts.values() if rule == SelectorRule.EXCLUDED),
        )

    def _count(
        self, selectors: Mapping[str, str], now: datetime
    ) -> dict[str, tuple[int, str | None]]:
        """One more tip carries each value: each one's new count and any ruling on it."""
        insert_into = (
            postgresql.insert
            if self.session.get_bind().dialect.name == "postgresql"
            else sqlite.insert
        )
        upsert = insert_into(SelectorValue)
        statement = upsert.on_conflict_do_update(
            index_elements=[SelectorValue.blind_index],
            set_={
                "tip_count": SelectorValue.tip_count + 1,
                "last_seen_at": upsert.excluded.last_seen_at,
                # A value excluded in advance has no first sighting yet.
                "first_seen_at": func.coalesce(
                    SelectorValue.first_seen_at, upsert.excluded.first_seen_at
                ),
            },
        ).returning(
            SelectorValue.blind_index,
            SelectorValue.tip_count,
            SelectorValue.rule,
            # SQLAlchemy sends the rows as one multi-row INSERT, in this order: the order the
            # rows (and their locks) are taken in. One statement whatever the rows, so it is
            # compiled once and cached (rows written into it would be compiled every time).
            sort_by_parameter_order=True,
        )
        rows = [
            {
                "blind_index": index,
                "selector_type": selectors[index],
                "tip_count": 1,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for index in sorted(selectors)
        ]
        return {
            row.blind_index: (int(row.tip_count), row.rule)
            for row in self.session.connection().execute(statement, rows)
        }


class UnknownSelectorValue(LookupError):
    """No value with that reference is held."""


class SelectorRulings:
    """Administrators' rulings on selector values: exclude (never link), allow (link past
    the cap), or clear. Audited in the caller's transaction; the caller commits.

    An administrator never sees tip content: a value is excluded by typing it (only its blind
    index is computed and kept), and over-correlating values are shown by type, count and a
    short reference to their index.
    """

    def __init__(
        self, session: Session, *, audit: AuditLog, clock: Clock, blind_index: BlindIndex | None
    ) -> None:
        self.session = session
        self.audit = audit
        self.clock = clock
        self.blind_index = blind_index

    def exclude_value(
        self,
        kind: str,
        value: str,
        *,
        platform: str | None,
        default_region: str | None,
        actor: str,
        address: str | None,
    ) -> SelectorValue:
        """Exclude a value typed by an administrator (normalised and blind-indexed as a tip's
        would be).

        Raises:
            crypto.InvalidSelector: the value is not valid for its type (the message does not
                quote it).
        """
        if self.blind_index is None:
            raise RuntimeError("this process has no blind-index key")
        index = self.blind_index.compute(kind, value, platform, default_region=default_region)
        row = self.session.get(SelectorValue, index)
        if row is None:
            row = SelectorValue(blind_index=index, selector_type=kind, tip_count=0)
            self.session.add(row)
        return self._rule(row, SelectorRule.EXCLUDED, actor=actor, address=address)

    def rule(
        self, reference: str, rule: SelectorRule | None, *, actor: str, address: str | None
    ) -> SelectorValue:
        """Exclude, allow or clear (``None``) a held value, by its reference (the start of
        its blind index, as shown on the over-correlating list).

        Raises:
            UnknownSelectorValue: no single value has that reference.
        """
        rows = self.session.scalars(
            select(SelectorValue)
            .where(SelectorValue.blind_index.startswith(reference, autoescape=True))
            .limit(2)
        ).all()
        if len(reference) < REFERENCE_CHARS or len(rows) != 1:
            raise UnknownSelectorValue("no selector value has that reference")
        return self._rule(rows[0], rule, actor=actor, address=address)

    def over_correlating(self, *, cap: int, limit: int = 200) -> list[SelectorValue]:
        """Values past the cap that nobody has ruled on, the most shared first."""
        return list(
            self.session.scalars(
                _ruled(None)
                .where(SelectorValue.tip_count > cap)
                .order_by(SelectorValue.tip_count.desc(), SelectorValue.blind_index)
                .limit(limit)
            )
        )

    def ruled(self, rule: SelectorRule, *, limit: int = 500) -> list[SelectorValue]:
        return list(
            self.session.scalars(_ruled(rule).order_by(SelectorValue.ruled_at.desc()).limit(limit))
        )

    def _rule(
        self, row: SelectorValue, rule: SelectorRule | None, *, actor: str, address: str | None
    ) -> SelectorValue:
        row.rule = rule.value if rule is not None else None
        row.ruled_by = actor if rule is not None else None
        row.ruled_at = self.clock.now() if rule is not None else None
        self.session.flush()
        self.audit.record(
            f"selector.{rule.value if rule is not None else 'cleared'}",
            actor=actor,
            subject=f"selector:{reference_of(row.blind_index)}",
            address=address,
            # Never how many tips carry it: an administrator who typed the value would learn
            # whether tips hold it (admins see no tip content).
            details={"type": row.selector_type},
        )
        return row


#: How much of a blind index names a value on the pages (64 bits: no two values share it in
#: practice, and it says nothing of the value without the key).
REFERENCE_CHARS = 16


def reference_of(blind_index: str) -> str:
    return blind_index[:REFERENCE_CHARS]


def _ruled(rule: SelectorRule | None) -> Select[SelectorValue]:
    condition = SelectorValue.rule.is_(None) if rule is None else SelectorValue.rule == rule.value
    return select(SelectorValue).where(condition)


def _linked_tips(tip_id: str) -> Select[tuple[str]]:
    """Ids of the tips sharing a value with this one, either way, through values nobody has
    excluded since."""
    live = select(SelectorValue.blind_index).where(
        (SelectorValue.rule.is_(None)) | (SelectorValue.rule != SelectorRule.EXCLUDED.value)
    )
    later = select(TipLink.tip_id.label("other")).where(
        TipLink.earlier_tip_id == tip_id, TipLink.blind_index.in_(live)
    )
    earlier = select(TipLink.earlier_tip_id.label("other")).where(
        TipLink.tip_id == tip_id, TipLink.blind_index.in_(live)
    )
    return later.union(earlier)  # type: ignore[return-value]


def linked_referral_count(session: Session, tip_id: str) -> int:
    """How many open referrals hold a tip sharing a value with this one."""
    others = _linked_tips(tip_id).subquery()
    return int(
        session.scalar(
            select(func.count(func.distinct(Tip.referral_id))).where(
                Tip.id.in_(select(others.c.other)), Tip.referral_id.is_not(None)
            )
        )
        or 0
    )


def linked_tip_count(session: Session, tip_id: str) -> int:
    """How many other tips share a value with this one, either way, not counting values an
    administrator has excluded since."""
    others = _linked_tips(tip_id).subquery()
    return int(session.scalar(select(func.count()).select_from(others)) or 0)
