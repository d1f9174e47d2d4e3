"""Values as people type them into forms, read by the services that take them as text.

``str.isdigit`` is true of "²" and "٣", which ``int`` then refuses (a 500, not a form error):
a number here is ASCII digits only, and small enough for any column it goes into.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,9}")


def whole_number(raw: str, *, most: int = 999_999_999) -> int | None:
    """``raw`` (surrounding spaces ignored) as a whole number from 0 to ``most``, or None."""
    text = raw.strip()
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if number <= most else None
