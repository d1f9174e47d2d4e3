"""Routing: the team whose jurisdiction covers a tip's location.

A team covers a country, or some of its regions. A team naming the tip's region is preferred to
one covering its whole country; a tip no team covers is left unrouted (``None``), for leads to
refer on.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from referrals.accounts.models import Team


def region_key(region: str) -> str:
    """How regions are compared: case and surrounding blanks do not matter."""
    return " ".join(region.split()).casefold()


def route(session: Session, *, country: str | None, region: str | None) -> int | None:
    """The id of the team the tip goes to, or None when no team covers its location."""
    if not country:
        return None
    teams = session.scalars(select(Team).where(Team.country == country).order_by(Team.id)).all()
    if region:
        wanted = region_key(region)
        for team in teams:
            if wanted in {region_key(name) for name in team.regions or ()}:
                return team.id
    for team in teams:
        if not team.regions:
            return team.id
    return None
