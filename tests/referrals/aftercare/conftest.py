"""Aftercare uses casework's people and referrals."""

from tests.referrals.casework.conftest import cast, clock  # noqa: F401 - fixtures shared
