"""Administration pages: accounts, agencies, teams and held tips (never tip content:
separation of duties)."""

from __future__ import annotations

from tipline.admin import (
    held_tips,  # noqa: F401 - its pages join the admin blueprint
    triage_rules,  # noqa: F401 - its pages join the admin blueprint
)
from tipline.admin.views import blueprint

__all__ = ["blueprint"]
