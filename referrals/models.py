"""Every model, imported in one place so Alembic and tests see the whole schema."""

from referrals.database import Base
from referrals.health.models import QueueProbe
from referrals.intake.models import IntakeKey

__all__ = ["Base", "IntakeKey", "QueueProbe"]
