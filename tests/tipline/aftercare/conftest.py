"""The aftercare pages use the referral pages' people (two caseworkers among them) and tips."""

from tests.tipline.casework.conftest import browser, handling, people  # noqa: F401 - fixtures shared
from tests.tipline.desk.conftest import clock, send_tip  # noqa: F401 - fixtures shared
