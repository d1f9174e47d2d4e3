"""``/operations``: operations planned for referrals (team leads plan; units' officers act)."""

from tipline.operations.views import blueprint

__all__ = ["blueprint"]
