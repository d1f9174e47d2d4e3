"""Administration pages: accounts, agencies, teams, held tips, the triage rules and selector
values (never tip content: separation of duties)."""

from __future__ import annotations

# Each module's pages join the admin blueprint when it is imported.
from tipline.admin import failed_jobs, held_tips, selectors, triage_rules  # noqa: F401
from tipline.admin.views import blueprint

__all__ = ["blueprint"]
