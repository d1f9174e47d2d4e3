"""``/aftercare``: safeguarded children's care plans (caseworkers) and their counts (leads)."""

from tipline.aftercare.views import blueprint

__all__ = ["blueprint"]
