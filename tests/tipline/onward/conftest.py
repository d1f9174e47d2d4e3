"""Onward packages' people are the referral pages' (a Manila team, units, officers)."""

from tests.tipline.casework.conftest import browser, handling, people  # noqa: F401 - fixtures
from tests.tipline.desk.conftest import clock, send_tip  # noqa: F401 - fixtures shared
