"""``/referrals/<id>/consents``: a team lead asks an agency's consent to pass on what it marked,
and records its answer."""

from tipline.handling.views import blueprint

__all__ = ["blueprint"]
