"""``/referrals/<id>/packages``: a team lead exports a referral's package for another country's
centre or agency."""

from tipline.onward.views import blueprint

__all__ = ["blueprint"]
