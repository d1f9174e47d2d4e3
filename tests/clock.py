"""A clock tests move by hand (services take their clock in the constructor)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


@dataclass
class ManualClock:
    """Stands still until the test moves it. It starts 5 seconds into a 30-second TOTP step,
    so a code computed for "now" is not on the edge of the next step."""

    moment: datetime = field(default_factory=lambda: datetime(2026, 11, 29, 9, 0, 5, tzinfo=UTC))

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)
