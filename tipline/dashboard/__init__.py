"""``/dashboard``: the team lead's figures, charts drawn on the server and their numbers as CSV."""

from tipline.dashboard.views import blueprint

__all__ = ["blueprint"]
