"""The analysts' desk: the queue of their team's tips, the tip page, triage decisions."""

from __future__ import annotations

from tipline.desk.views import blueprint

__all__ = ["blueprint"]
