"""Triage: what the centre knows about each selector value, the links between tips that share
one, and the versioned rules that score tips.

Correlation works on blind indexes only: no table here holds an identifier in clear.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class SelectorRule(enum.StrEnum):
    """An administrator's ruling on a selector value."""

    EXCLUDED = "excluded"  # junk or shared (a help line, a platform's own address): never links
    ALLOWED = "allowed"  # links however many tips share it (judged meaningful despite the cap)


class SelectorValue(Base):
    """One distinct selector value the centre holds, known only by its blind index.

    ``tip_count`` counts the tips that carry it (updated in the transaction that adds a tip's
    selectors, under this row's lock, which also orders concurrent tips sharing a value: the
    later one sees the earlier's selectors and links to it). A value carried by more tips than
    the rules' cap stops linking ("over-correlating") until an administrator rules on it.
    A row may exist with no tip yet: an administrator excluded the value in advance.
    """

    __tablename__ = "selector_values"
    # The over-correlating list: values by how many tips carry them.
    __table_args__ = (Index("ix_selector_values_tip_count", "tip_count"),)

    blind_index: Mapped[str] = mapped_column(String(64), primary_key=True)
    selector_type: Mapped[str] = mapped_column(String(20))
    tip_count: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    rule: Mapped[str | None] = mapped_column(String(12), default=None)
    ruled_by: Mapped[str | None] = mapped_column(String(120), default=None)  # audit actor
    ruled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class TipLink(Base):
    """A later tip shares a selector value with an earlier one: one row per shared value.

    Written when the later tip is processed (never changed after); shown on both tips' pages,
    without what an administrator has since excluded. Referrals are reached through their
    tips.
    """

    __tablename__ = "tip_links"
    __table_args__ = (Index("ix_tip_links_earlier", "earlier_tip_id"),)

    tip_id: Mapped[str] = mapped_column(ForeignKey("tips.id"), primary_key=True)
    earlier_tip_id: Mapped[str] = mapped_column(ForeignKey("tips.id"), primary_key=True)
    blind_index: Mapped[str] = mapped_column(
        ForeignKey("selector_values.blind_index"), primary_key=True
    )
    selector_type: Mapped[str] = mapped_column(String(20))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TriageRuleSet(Base):
    """One version of the rules that score, time and correlate tips (see
    ``referrals.triage.rules``). Versions are only added: each score names the one it used."""

    __tablename__ = "triage_rule_sets"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(120))  # audit actor
