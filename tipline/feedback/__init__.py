"""``/referrals/<id>/feedback``: a team lead releases feedback to the agencies whose tips are in
a referral."""

from tipline.feedback.views import blueprint

__all__ = ["blueprint"]
