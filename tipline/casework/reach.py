"""Who is asking, and the referral they ask about if it is within their reach (else 404: a
referral out of reach does not exist to them), for the pages hung off a referral (its
feedback, consents and packages)."""

from __future__ import annotations

from flask import abort

from referrals.accounts.models import User
from referrals.casework.models import Referral
from referrals.casework.services import within_reach
from tipline import access, database


def person() -> User:
    found = access.current_person()
    assert found is not None  # noqa: S101 - the access rule admitted only signed-in people
    return found


def referral_or_404(referral_id: int) -> Referral:
    found = database.session().get(Referral, referral_id)
    if found is None or not within_reach(person(), found):
        abort(404)
    return found
