"""Accounts: creation, enrolment, the two sign-in steps, lockout, sessions, all audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from referrals.accounts import totp
from referrals.accounts.lockout import LOCK_AFTER_FAILURES
from referrals.accounts.models import User
from referrals.accounts.passwords import PasswordRejected
from referrals.accounts.services import (
    SESSION_ABSOLUTE,
    SESSION_IDLE,
    AccountError,
    AccountService,
    ApprovalRule,
    CodeOutcome,
    EnrolmentInvalid,
    TeamService,
)
from referrals.audit.models import AuditRecord
from referrals.audit.services import AuditLog
from tests.clock import ManualClock
from tests.conftest import RegisteredAgency
from tests.referrals.accounts.conftest import ADDRESS, PASSWORD, ServiceFactory, enrol
from tests.referrals.accounts.test_totp import rfc6238_code
from tipline.runtime import Runtime


def actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditRecord.action).order_by(AuditRecord.id)))


def test_an_account_is_created_with_a_one_time_link_and_audited(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    enrolment = accounts.create(email=" Ana@Centre.Example ", role="analyst", actor="cli:root")
    assert enrolment.user.email == "ana@centre.example"
    assert enrolment.expires_at == clock.now() + timedelta(hours=72)
    assert accounts.enrolment_for(enrolment.token).user_id == enrolment.user.id
    assert actions(session) == ["account.created"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"email": "not-an-email", "role": "analyst"}, "not a valid e-mail address"),
        (
            {"email": "a@b.example", "role": "boss"},
            "role must be one of partner, analyst, lead, officer, caseworker, admin",
        ),
        (
            {"email": "a@b.example", "role": "partner"},
            "a partner account belongs to an agency: give --agency",
        ),
        (
            {"email": "a@b.example", "role": "analyst", "agency_id": 1},
            "only partner accounts belong to an agency",
        ),
        ({"email": "a@b.example", "role": "partner", "agency_id": 999}, "no agency 999"),
        ({"email": "a@b.example", "role": "analyst", "team": "Nowhere"}, "no team 'Nowhere'"),
        (
            {"email": "a@b.example", "role": "admin", "team": "Any"},
            "only analysts and leads belong to a team",
        ),
        ({"email": "taken@centre.example", "role": "lead"}, "an account with that e-mail exists"),
    ],
)
def test_a_bad_account_request_is_refused(
    accounts: AccountService, kwargs: dict[str, object], message: str
) -> None:
    accounts.create(email="Taken@Centre.Example", role="analyst", actor="cli:root")
    with pytest.raises(AccountError) as refused:
        accounts.create(actor="cli:root", **kwargs)  # type: ignore[arg-type]
    assert str(refused.value) == message


def test_a_partner_account_belongs_to_its_agency(
    accounts: AccountService, agencies: dict[str, RegisteredAgency]
) -> None:
    agency = agencies["agency-a"]
    enrolment = accounts.create(
        email="officer@agency-a.example", role="partner", agency_id=agency.id, actor="cli:root"
    )
    assert enrolment.user.agency_id == agency.id
    with pytest.raises(AccountError) as refused:
        accounts.create(
            email="other@agency-a.example",
            role="partner",
            agency_id=agency.id,
            team="Manila",
            actor="cli:root",
        )
    assert str(refused.value) == "only analysts and leads belong to a team"


def test_enrolment_needs_a_good_password_and_a_valid_code_and_works_once(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    enrolment = accounts.create(email="ana@centre.example", role="analyst", actor="cli:root")
    secret = totp.new_secret()
    good_code = rfc6238_code(secret, clock.now())
    for weak in ("short", "password1234", "aaaaaaaaaaaaaaaa", "ana@centre.example!!"):
        with pytest.raises(PasswordRejected):
            accounts.complete_enrolment(
                enrolment.token, password=weak, totp_secret=secret, code=good_code, address=None
            )
    with pytest.raises(AccountError, match="code is not right"):
        accounts.complete_enrolment(
            enrolment.token, password=PASSWORD, totp_secret=secret, code="000000", address=None
        )
    user = accounts.complete_enrolment(
        enrolment.token, password=PASSWORD, totp_secret=secret, code=good_code, address=ADDRESS
    )
    assert user.enrolled_at is not None
    assert user.password_hash is not None and PASSWORD not in user.password_hash
    assert user.totp_secret is not None and secret.encode() not in user.totp_secret
    with pytest.raises(EnrolmentInvalid):
        accounts.enrolment_for(enrolment.token)
    assert actions(session) == ["account.created", "account.enrolled"]


def test_an_enrolment_link_expires(accounts: AccountService, clock: ManualClock) -> None:
    enrolment = accounts.create(email="ana@centre.example", role="analyst", actor="cli:root")
    clock.advance(hours=72, seconds=1)
    with pytest.raises(EnrolmentInvalid):
        accounts.enrolment_for(enrolment.token)


def test_login_is_password_then_a_fresh_code(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    checked = accounts.check_password("ANA@centre.example", PASSWORD, address=ADDRESS)
    assert checked.user is not None and checked.pending_token is not None
    code = ana.code(clock)
    signed_in = accounts.check_code(checked.pending_token, code, address=ADDRESS)
    assert signed_in.outcome is CodeOutcome.SIGNED_IN and signed_in.session_token
    live = accounts.session_user(signed_in.session_token)
    assert live is not None and live.user.id == ana.user.id
    # The same code again (a replay, or an observer) is refused, in a sign-in of its own.
    again = accounts.check_password("ana@centre.example", PASSWORD, address=ADDRESS)
    assert again.pending_token is not None
    assert accounts.check_code(again.pending_token, code, address=ADDRESS).outcome is (
        CodeOutcome.WRONG
    )
    assert actions(session)[-2:] == ["login.succeeded", "login.failed"]


def test_a_wrong_password_and_an_unknown_account_look_the_same(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    enrol(accounts, clock)
    assert accounts.check_password("ana@centre.example", "wrong password!!", address=ADDRESS) == (
        accounts.check_password("nobody@centre.example", PASSWORD, address=ADDRESS)
    )


def test_failures_lock_the_account_until_an_admin_unlocks_it(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    for _ in range(LOCK_AFTER_FAILURES):
        accounts.check_password("ana@centre.example", "wrong password!!", address=ADDRESS)
    locked = accounts.check_password("ana@centre.example", PASSWORD, address=ADDRESS)
    assert locked.user is None and locked.locked
    accounts.unlock(ana.user, actor="user:1")
    assert accounts.check_password("ana@centre.example", PASSWORD, address=ADDRESS).user


def test_a_disabled_account_cannot_log_in_and_its_sessions_end(
    accounts: AccountService, clock: ManualClock
) -> None:
    user = enrol(accounts, clock).user
    token = accounts.start_session(user, address=ADDRESS)
    live = accounts.session_user(token)
    assert live is not None and live.user == user
    accounts.disable(user, actor="user:1")
    assert accounts.session_user(token) is None
    assert accounts.check_password("ana@centre.example", PASSWORD, address=ADDRESS).user is None


def test_a_live_session_of_a_disabled_account_is_refused_even_if_it_was_not_ended(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    user = enrol(accounts, clock).user
    token = accounts.start_session(user, address=ADDRESS)
    # Disabled behind the service's back (a database fix, a script): no session was ended.
    session.execute(update(User).where(User.id == user.id).values(disabled_at=clock.now()))
    session.commit()
    session.expire_all()
    assert accounts.session_user(token) is None


def test_sessions_end_when_idle_too_long_or_too_old_or_logged_out(
    accounts: AccountService, clock: ManualClock
) -> None:
    user = enrol(accounts, clock).user
    idle = accounts.start_session(user, address=ADDRESS)
    clock.advance(seconds=SESSION_IDLE.total_seconds() + 1)
    assert accounts.session_user(idle) is None
    assert accounts.timed_out_owner(idle) == user.id

    busy = accounts.start_session(user, address=ADDRESS)
    elapsed = timedelta(0)
    while elapsed < SESSION_ABSOLUTE - timedelta(minutes=10):
        clock.advance(minutes=10)
        elapsed += timedelta(minutes=10)
        live = accounts.session_user(busy)
        assert live is not None and live.user == user
    clock.advance(minutes=11)
    assert accounts.session_user(busy) is None
    assert accounts.timed_out_owner(busy) == user.id

    ended = accounts.start_session(user, address=ADDRESS)
    accounts.end_session(ended, address=ADDRESS)
    assert accounts.session_user(ended) is None
    assert accounts.timed_out_owner(ended) is None  # signed out, not timed out


def test_a_session_ends_only_past_its_limits_and_each_visit_keeps_it_alive(
    accounts: AccountService, clock: ManualClock
) -> None:
    user = enrol(accounts, clock).user
    quiet = accounts.start_session(user, address=ADDRESS)
    clock.advance(seconds=SESSION_IDLE.total_seconds())
    assert accounts.session_user(quiet) is not None  # idle exactly that long: still live
    # A visit a minute and more after the last is remembered: the idle time starts again.
    busy = accounts.start_session(user, address=ADDRESS)
    clock.advance(seconds=61)
    assert accounts.session_user(busy) is not None
    clock.advance(seconds=SESSION_IDLE.total_seconds() - 1)
    assert accounts.session_user(busy) is not None
    # Busy all along, it lasts exactly its absolute lifetime, not a moment longer.
    old = accounts.start_session(user, address=ADDRESS)
    for _ in range(int(SESSION_ABSOLUTE / timedelta(minutes=10))):
        clock.advance(minutes=10)
        assert accounts.session_user(old) is not None
    clock.advance(microseconds=1)
    assert accounts.session_user(old) is None
    assert accounts.timed_out_owner(old) == user.id


def test_a_timed_out_session_of_an_account_disabled_since_has_no_owner(
    accounts: AccountService, clock: ManualClock
) -> None:
    """Nothing is kept for an account that can no longer sign in to take it back."""
    user = enrol(accounts, clock).user
    token = accounts.start_session(user, address=ADDRESS)
    clock.advance(seconds=SESSION_IDLE.total_seconds() + 1)
    assert accounts.session_user(token) is None
    assert accounts.timed_out_owner(token) == user.id
    accounts.disable(user, actor="user:1")
    assert accounts.timed_out_owner(token) is None
    assert accounts.timed_out_owner("no such session") is None


def test_resetting_the_second_factor_needs_a_new_enrolment(
    accounts: AccountService, clock: ManualClock
) -> None:
    user = enrol(accounts, clock).user
    session_token = accounts.start_session(user, address=ADDRESS)
    enrolment = accounts.reset_second_factor(user, actor="user:1")
    assert accounts.session_user(session_token) is None
    assert accounts.check_password("ana@centre.example", PASSWORD, address=ADDRESS).user is None
    assert accounts.enrolment_for(enrolment.token).user_id == user.id


def test_first_admin_is_created_once_and_not_again_after_enrolling(
    accounts: AccountService, clock: ManualClock
) -> None:
    created = accounts.first_admin(email="root@centre.example", actor="cli:root")
    assert created is not None and created.user.role == "admin"
    reissued = accounts.first_admin(email="other@centre.example", actor="cli:root")
    assert reissued is not None and reissued.user.id == created.user.id
    with pytest.raises(EnrolmentInvalid):
        accounts.enrolment_for(created.token)  # the older link no longer works
    secret = totp.new_secret()
    accounts.complete_enrolment(
        reissued.token,
        password=PASSWORD,
        totp_secret=secret,
        code=rfc6238_code(secret, clock.now()),
        address=None,
    )
    assert accounts.first_admin(email="root@centre.example", actor="cli:root") is None


def test_the_first_admins_link_works_at_once_even_under_four_eyes(
    service_on: ServiceFactory, session: Session, clock: ManualClock
) -> None:
    """There is no second administrator to approve it yet; a reissued link is recorded."""
    four_eyes = service_on(session, ApprovalRule.ON)
    created = four_eyes.first_admin(email="root@centre.example", actor="cli:root")
    assert created is not None and created.awaiting_approval is False
    assert four_eyes.enrolment_for(created.token).user_id == created.user.id
    reissued = four_eyes.first_admin(email="root@centre.example", actor="cli:operator")
    assert reissued is not None and reissued.awaiting_approval is False
    link = four_eyes.enrolment_for(reissued.token)
    assert (link.purpose, link.requested_by) == ("first_admin", "cli:operator")
    (record,) = session.scalars(
        select(AuditRecord).where(AuditRecord.action == "account.enrolment_reissued")
    )
    assert (record.actor, record.subject) == ("cli:operator", f"user:{created.user.id}")


def test_a_disabled_admin_does_not_count_as_the_first_admin(
    accounts: AccountService, clock: ManualClock
) -> None:
    root = enrol(accounts, clock, "root@centre.example", "admin").user
    accounts.disable(root, actor="cli:root")
    # Nobody can administer the instance: a new first admin is made (the old one stays off).
    replacement = accounts.first_admin(email="new-root@centre.example", actor="cli:root")
    assert replacement is not None and replacement.user.email == "new-root@centre.example"
    assert replacement.user.role == "admin"
    assert accounts.enrolment_for(replacement.token).user_id == replacement.user.id


def test_an_enrolment_link_for_a_disabled_account_is_refused(
    accounts: AccountService, clock: ManualClock
) -> None:
    enrolment = accounts.create(email="ana@centre.example", role="analyst", actor="cli:root")
    accounts.disable(enrolment.user, actor="user:1")
    secret = totp.new_secret()
    with pytest.raises(EnrolmentInvalid, match="already been used or has expired"):
        accounts.enrolment_for(enrolment.token)
    with pytest.raises(EnrolmentInvalid):
        accounts.complete_enrolment(
            enrolment.token,
            password=PASSWORD,
            totp_secret=secret,
            code=rfc6238_code(secret, clock.now()),
            address=ADDRESS,
        )
    assert accounts.find("ana@centre.example").enrolled_at is None


def test_a_team_works_a_country_or_some_of_its_regions_and_its_name_is_unique(
    session: Session, runtime: Runtime, clock: ManualClock
) -> None:
    teams = TeamService(session, audit=AuditLog(session, key=runtime.audit_key, clock=clock))
    team = teams.add(
        name="  Visayas ",
        country=" ph",
        regions=[" Cebu", "Bohol ", "", "Cebu", "  "],
        actor="user:1",
    )
    assert (team.name, team.country, team.regions) == ("Visayas", "PH", ["Bohol", "Cebu"])
    (record,) = session.scalars(select(AuditRecord).where(AuditRecord.action == "team.created"))
    assert (record.actor, record.subject, record.details) == (
        "user:1",
        f"team:{team.id}",
        {"country": "PH"},
    )
    refusals = [
        ({"name": " ", "country": "PH"}, "a team needs a name"),
        ({"name": "Visayas", "country": "PH"}, "a team named 'Visayas' exists"),
        (
            {"name": "Luzon", "country": "Philippines"},
            "'Philippines' is not an ISO 3166-1 alpha-2 country code",
        ),
    ]
    for fields, reason in refusals:
        with pytest.raises(AccountError) as refused:
            teams.add(regions=[], actor="user:1", **fields)
        assert str(refused.value) == reason
