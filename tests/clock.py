"""A clock tests move by hand, for services that take a ``Clock``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass
class ManualClock:
    """Stands still until the test moves it."""

    moment: datetime = field(default_factory=lambda: datetime(2026, 12, 3, 9, 0, 0, tzinfo=UTC))

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)
