"""Pages for partner agencies' officers: send a tip by web form, follow their agency's tips."""

from __future__ import annotations

from tipline.partner.views import blueprint

__all__ = ["blueprint"]
