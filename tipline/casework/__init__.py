"""``/referrals``: referrals and their lifecycle (the team's analysts and leads; officers of the
unit a referral is handed to)."""

from tipline.casework.views import blueprint

__all__ = ["blueprint"]
