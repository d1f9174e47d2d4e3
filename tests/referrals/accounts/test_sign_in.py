"""Sign-in abuse: the pending sign-in, codes racing, lockouts that cost the attacker more
than the victim (trusted browsers), and step-up."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from referrals.accounts import totp
from referrals.accounts.lockout import LOCK_AFTER_FAILURES, LOCK_DURATION, minutes_left
from referrals.accounts.models import (
    PendingSignIn,
    SessionEnd,
    TrustedDevice,
    User,
    UserSession,
)
from referrals.accounts.passwords import PasswordHashing
from referrals.accounts.services import (
    DEVICE_TRUST_LIFETIME,
    MAX_DEVICE_TOKENS,
    MAX_NEXT_PATH,
    SIGN_IN_CODE_ATTEMPTS,
    SIGN_IN_LIFETIME,
    STEP_UP_WINDOW,
    AccountService,
    CodeOutcome,
    StepUpOutcome,
)
from referrals.audit.models import AuditRecord
from tests.clock import ManualClock
from tests.referrals.accounts.conftest import ADDRESS, PASSWORD, Enrolled, ServiceFactory, enrol
from tests.referrals.accounts.test_totp import rfc6238_code
from tipline.runtime import Runtime

WRONG = "wrong password!!"
ATTACKER = "203.0.113.66"


def _records(session: Session, action: str) -> list[AuditRecord]:
    return list(
        session.scalars(
            select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.id)
        )
    )


def _sign_in(
    accounts: AccountService, ana: Enrolled, clock: ManualClock, *, devices: tuple[str, ...] = ()
) -> str:
    """Both steps; returns the trusted-browser token the browser is given."""
    checked = accounts.check_password(
        ana.user.email, PASSWORD, address=ADDRESS, device_tokens=devices
    )
    assert checked.pending_token is not None
    signed_in = accounts.check_code(checked.pending_token, ana.code(clock), address=ADDRESS)
    assert signed_in.outcome is CodeOutcome.SIGNED_IN
    return signed_in.device_token or devices[0]


def _lock_out(accounts: AccountService, ana: Enrolled) -> None:
    for _ in range(LOCK_AFTER_FAILURES):
        accounts.check_password(ana.user.email, WRONG, address=ATTACKER)


# -- the pending sign-in ---------------------------------------------------------------------


def test_the_password_step_is_kept_on_the_server_and_used_once(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    checked = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS, next_path="/x")
    assert checked.pending_token is not None
    row = session.scalars(select(PendingSignIn)).one()
    assert checked.pending_token not in row.id  # only its hash is stored
    assert row.user_id == ana.user.id and row.next_path == "/x"
    done = accounts.check_code(checked.pending_token, ana.code(clock), address=ADDRESS)
    assert done.outcome is CodeOutcome.SIGNED_IN and done.next_path == "/x"
    # A replay of the same pending sign-in, even with the next code, starts again.
    clock.advance(seconds=30)
    replay = accounts.check_code(checked.pending_token, ana.code(clock), address=ADDRESS)
    assert replay.outcome is CodeOutcome.RESTART and replay.session_token is None


def test_the_password_step_expires_after_a_few_minutes(
    accounts: AccountService, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    checked = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS)
    assert checked.pending_token is not None
    clock.advance(seconds=SIGN_IN_LIFETIME.total_seconds() + 1)
    late = accounts.check_code(checked.pending_token, ana.code(clock), address=ADDRESS)
    assert late.outcome is CodeOutcome.RESTART


def test_a_few_wrong_codes_end_the_pending_sign_in(
    accounts: AccountService, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    checked = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS)
    assert checked.pending_token is not None
    outcomes = [
        accounts.check_code(checked.pending_token, "000000", address=ADDRESS).outcome
        for _ in range(SIGN_IN_CODE_ATTEMPTS)
    ]
    assert outcomes == [CodeOutcome.WRONG] * (SIGN_IN_CODE_ATTEMPTS - 1) + [CodeOutcome.RESTART]
    right = accounts.check_code(checked.pending_token, ana.code(clock), address=ADDRESS)
    assert right.outcome is CodeOutcome.RESTART


def test_ending_one_pending_sign_in_leaves_the_others(
    accounts: AccountService, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    bo = enrol(accounts, clock, "bo@centre.example")
    clock.advance(seconds=30)
    guessed = accounts.check_password(ana.user.email, PASSWORD, address=ATTACKER).pending_token
    waiting = accounts.check_password(bo.user.email, PASSWORD, address=ADDRESS).pending_token
    assert guessed and waiting
    for _ in range(SIGN_IN_CODE_ATTEMPTS):
        accounts.check_code(guessed, "000000", address=ATTACKER)
    assert accounts.check_code(waiting, bo.code(clock), address=ADDRESS).outcome is (
        CodeOutcome.SIGNED_IN
    )


def test_a_sign_in_refused_at_the_code_step_must_start_again_once_allowed_again(
    accounts: AccountService, clock: ManualClock
) -> None:
    """The password step is over for good when the code step refuses it (account disabled, or
    locked): an administrator enabling or unlocking the account does not revive it."""
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    disabled = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS).pending_token
    locked = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS).pending_token
    assert disabled and locked
    accounts.disable(ana.user, actor="user:1")
    assert accounts.check_code(disabled, ana.code(clock), address=ADDRESS).outcome is (
        CodeOutcome.RESTART
    )
    accounts.enable(ana.user, actor="user:1")
    _lock_out(accounts, ana)
    assert accounts.check_code(locked, ana.code(clock), address=ADDRESS).outcome is (
        CodeOutcome.LOCKED
    )
    accounts.unlock(ana.user, actor="user:1")
    for pending in (disabled, locked):
        again = accounts.check_code(pending, ana.code(clock), address=ADDRESS)
        assert again.outcome is CodeOutcome.RESTART and again.session_token is None


def test_two_requests_racing_with_the_same_code_sign_in_once(
    service_on: ServiceFactory, runtime: Runtime, clock: ManualClock
) -> None:
    with runtime.session_factory() as setup:
        ana = enrol(service_on(setup), clock)
    clock.advance(seconds=30)
    with runtime.session_factory() as first, runtime.session_factory() as second:
        one, two = service_on(first), service_on(second)
        pending = [
            service.check_password(ana.user.email, PASSWORD, address=ADDRESS).pending_token
            for service in (one, two)
        ]
        assert pending[0] and pending[1]
        # The race: the second request has read the account (no code used since enrolment)
        # before the first records the code as used, and holds what it read.
        read_by_second = second.get(User, ana.user.id)
        assert read_by_second is not None and read_by_second.totp_last_step is not None
        code = ana.code(clock)
        first_outcome = one.check_code(pending[0], code, address=ADDRESS).outcome
        # What the second request read says the code is unused still.
        assert read_by_second.totp_last_step < totp.time_step(clock.now())
        outcomes = [first_outcome, two.check_code(pending[1], code, address=ADDRESS).outcome]
    assert sorted(outcome.name for outcome in outcomes) == ["SIGNED_IN", "WRONG"]
    with runtime.session_factory() as check:
        assert check.scalar(select(UserSession.id).where(UserSession.ended_at.is_(None)))
        assert len(list(check.scalars(select(UserSession)))) == 1


def test_a_password_hashed_with_old_costs_is_hashed_anew_when_it_is_next_right(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    older = PasswordHashing(PasswordHasher(time_cost=1, memory_cost=512))
    accounts.hashing, current = older, accounts.hashing
    ana = enrol(accounts, clock)
    accounts.hashing = current
    old_hash = ana.user.password_hash
    assert old_hash is not None and current.needs_rehash(old_hash)
    accounts.check_password(ana.user.email, WRONG, address=ADDRESS)
    session.refresh(ana.user)
    assert ana.user.password_hash == old_hash  # a wrong password changes nothing
    assert accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS).pending_token
    session.refresh(ana.user)
    new_hash = ana.user.password_hash
    assert new_hash is not None and not current.needs_rehash(new_hash)
    assert current.verify(new_hash, PASSWORD)


def test_a_trusted_browser_stays_trusted_while_used_and_only_the_first_few_count(
    accounts: AccountService, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    trusted = _sign_in(accounts, ana, clock)
    _lock_out(accounts, ana)  # for every browser it has not signed in with
    # Each sign-in renews the trust: used again well within its lifetime, it lasts longer.
    clock.advance(seconds=DEVICE_TRUST_LIFETIME.total_seconds() - 60)
    assert _sign_in(accounts, ana, clock, devices=(trusted,)) == trusted
    clock.advance(seconds=DEVICE_TRUST_LIFETIME.total_seconds() - 60)
    _lock_out(accounts, ana)
    # A browser presenting more tokens than a shared computer would: only the first few count.
    crowded = tuple(f"made-up-{n}" for n in range(MAX_DEVICE_TOKENS)) + (trusted,)
    assert accounts.check_password(
        ana.user.email, PASSWORD, address=ADDRESS, device_tokens=crowded
    ).locked
    fewer = accounts.check_password(
        ana.user.email, PASSWORD, address=ADDRESS, device_tokens=crowded[1:]
    )
    assert fewer.pending_token is not None and not fewer.locked
    # Unused for its whole lifetime, the browser is a stranger again.
    clock.advance(seconds=DEVICE_TRUST_LIFETIME.total_seconds())
    _lock_out(accounts, ana)
    assert accounts.check_password(
        ana.user.email, PASSWORD, address=ADDRESS, device_tokens=(trusted,)
    ).locked


def test_where_to_go_after_signing_in_is_kept_unless_it_is_too_long(
    accounts: AccountService, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    longest = "/" + "x" * (MAX_NEXT_PATH - 1)
    for asked, kept in ((longest, longest), (longest + "x", "/")):
        clock.advance(seconds=30)
        checked = accounts.check_password(
            ana.user.email, PASSWORD, address=ADDRESS, next_path=asked
        )
        assert checked.pending_token is not None
        done = accounts.check_code(checked.pending_token, ana.code(clock), address=ADDRESS)
        assert done.next_path == kept


# -- lockout ---------------------------------------------------------------------------------


def test_a_locked_accounts_code_step_refuses_even_a_valid_code(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    # The password step was passed; then someone else's guesses lock the account.
    checked = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS)
    assert checked.pending_token is not None
    _lock_out(accounts, ana)
    refused = accounts.check_code(checked.pending_token, ana.code(clock), address=ADDRESS)
    assert refused.outcome is CodeOutcome.LOCKED and refused.session_token is None
    assert refused.locked_until == clock.now() + LOCK_DURATION
    assert session.scalars(select(UserSession)).all() == []


def test_a_lock_runs_out_and_one_wrong_password_then_does_not_lock_again(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    _lock_out(accounts, ana)
    assert accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS).locked
    clock.advance(seconds=LOCK_DURATION.total_seconds() + 1)
    # The attacker's one request every 15 minutes no longer keeps the account locked.
    after = accounts.check_password(ana.user.email, WRONG, address=ATTACKER)
    assert not after.locked
    checked = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS)
    assert checked.pending_token is not None and not checked.locked
    (locked,) = _records(session, "account.locked")
    assert locked.details["scope"] == "untrusted_browsers"
    assert locked.details["until"] == (locked.at + LOCK_DURATION).isoformat(timespec="seconds")


def test_a_lock_lasts_to_the_moment_and_failures_then_count_from_one(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    _lock_out(accounts, ana)
    clock.advance(seconds=LOCK_DURATION.total_seconds() - 0.000001)
    assert accounts.check_password(ana.user.email, WRONG, address=ATTACKER).locked
    clock.advance(microseconds=1)  # exactly the lock's end
    for attempt in range(1, LOCK_AFTER_FAILURES):
        assert not accounts.check_password(ana.user.email, WRONG, address=ATTACKER).locked
        assert _records(session, "login.failed")[-1].details["failures"] == attempt
    assert accounts.check_password(ana.user.email, WRONG, address=ATTACKER).locked
    # Each lock is audited, from its own start.
    _, second = _records(session, "account.locked")
    assert second.details["until"] == (clock.now() + LOCK_DURATION).isoformat(timespec="seconds")


@pytest.mark.parametrize(
    ("left", "minutes"),
    [
        (LOCK_DURATION, 15),
        (timedelta(minutes=14, seconds=1), 15),
        (timedelta(seconds=61), 2),
        (timedelta(seconds=60), 1),
        (timedelta(seconds=1), 1),
        (timedelta(0), 1),  # never "0 minutes from now"
    ],
)
def test_the_minutes_a_lock_has_left_are_rounded_up(
    clock: ManualClock, left: timedelta, minutes: int
) -> None:
    """What the sign-in page tells a locked-out person: the lock has surely run out by then."""
    assert minutes_left(clock.now() + left, clock.now()) == minutes


def test_concurrent_failures_all_count(
    service_on: ServiceFactory, runtime: Runtime, clock: ManualClock
) -> None:
    with runtime.session_factory() as setup:
        ana = enrol(service_on(setup), clock)
    attempts = LOCK_AFTER_FAILURES - 1
    # Every request has read the account's count before any writes its own.
    all_read = threading.Barrier(attempts, timeout=30)

    class ReadTogether(PasswordHashing):
        def verify(self, hashed: str | None, password: str) -> bool:
            all_read.wait()
            return runtime.password_hashing.verify(hashed, password)

    def attempt(_: int) -> bool:
        with runtime.session_factory() as own:
            service = service_on(own)
            service.hashing = ReadTogether()
            return service.check_password(ana.user.email, WRONG, address=ATTACKER).locked

    with ThreadPoolExecutor(max_workers=attempts) as pool:
        assert not any(pool.map(attempt, range(attempts)))
    with runtime.session_factory() as check:
        user = check.get(User, ana.user.id)
        assert user is not None and user.failed_logins == attempts
    # One more locks it: none of the concurrent failures was lost.
    with runtime.session_factory() as last:
        assert service_on(last).check_password(ana.user.email, WRONG, address=ATTACKER).locked


def test_a_locked_account_still_signs_in_from_a_trusted_browser(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    trusted = _sign_in(accounts, ana, clock)
    assert session.scalars(select(TrustedDevice)).one().token_hash != trusted
    _lock_out(accounts, ana)
    # The attacker's browser (no device token, or a made-up one) stays locked out.
    for devices in ((), ("x" * 43,)):
        attacker = accounts.check_password(
            ana.user.email, PASSWORD, address=ATTACKER, device_tokens=devices
        )
        assert attacker.locked and attacker.pending_token is None
    # Ana's browser has its own budget, and signs in.
    clock.advance(seconds=30)
    assert _sign_in(accounts, ana, clock, devices=(trusted,)) == trusted
    # Which leaves the account locked for everyone else.
    assert accounts.check_password(ana.user.email, PASSWORD, address=ATTACKER).locked


def test_a_trusted_browser_has_its_own_failure_budget(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    trusted = _sign_in(accounts, ana, clock)
    for _ in range(LOCK_AFTER_FAILURES):
        accounts.check_password(ana.user.email, WRONG, address=ADDRESS, device_tokens=(trusted,))
    own = accounts.check_password(
        ana.user.email, PASSWORD, address=ADDRESS, device_tokens=(trusted,)
    )
    assert own.locked  # that browser is locked now...
    elsewhere = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS)
    assert elsewhere.pending_token is not None  # ...and the account, elsewhere, is not
    (locked,) = _records(session, "account.locked")
    assert locked.details["scope"] == "trusted_browser"


def test_an_unlock_frees_the_accounts_browsers_and_no_one_elses(
    accounts: AccountService, clock: ManualClock
) -> None:
    ana, bo = enrol(accounts, clock), enrol(accounts, clock, "bo@centre.example")
    clock.advance(seconds=30)
    browsers = {person: _sign_in(accounts, person, clock) for person in (ana, bo)}
    for person, device in browsers.items():
        for _ in range(LOCK_AFTER_FAILURES):
            accounts.check_password(
                person.user.email, WRONG, address=ADDRESS, device_tokens=(device,)
            )
    accounts.unlock(ana.user, actor="user:1")
    for person, still_locked in ((ana, False), (bo, True)):
        checked = accounts.check_password(
            person.user.email, PASSWORD, address=ADDRESS, device_tokens=(browsers[person],)
        )
        assert checked.locked is still_locked


def test_a_second_factor_reset_forgets_the_trusted_browsers_and_the_lock(
    accounts: AccountService, clock: ManualClock
) -> None:
    ana, bo = enrol(accounts, clock), enrol(accounts, clock, "bo@centre.example")
    clock.advance(seconds=30)
    anas_browser, bos_browser = (_sign_in(accounts, person, clock) for person in (ana, bo))
    _lock_out(accounts, ana)
    reset = accounts.reset_second_factor(ana.user, actor="user:1")
    secret = totp.new_secret()
    clock.advance(seconds=30)
    user = accounts.complete_enrolment(
        reset.token,
        password=PASSWORD,
        totp_secret=secret,
        code=rfc6238_code(secret, clock.now()),
        address=ADDRESS,
    )
    # Enrolled again, the account has its whole budget of failures...
    for _ in range(LOCK_AFTER_FAILURES - 1):
        accounts.check_password(user.email, WRONG, address=ATTACKER)
    clock.advance(seconds=30)
    # ...and the browser it trusted before is a stranger now: it is trusted anew.
    again = Enrolled(user=user, secret=secret)
    assert _sign_in(accounts, again, clock, devices=(anas_browser,)) != anas_browser
    # Bo's browser is still his trusted one.
    assert _sign_in(accounts, bo, clock, devices=(bos_browser,)) == bos_browser


# -- step-up ---------------------------------------------------------------------------------


def test_step_up_takes_a_new_code_and_never_a_used_one(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    checked = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS)
    assert checked.pending_token is not None
    used = ana.code(clock)
    token = accounts.check_code(checked.pending_token, used, address=ADDRESS).session_token
    assert token is not None
    live = accounts.session_user(token)
    assert live is not None and not live.needs_step_up(clock.now())
    clock.advance(seconds=STEP_UP_WINDOW.total_seconds() + 1)
    live = accounts.session_user(token)
    assert live is not None and live.needs_step_up(clock.now())
    assert accounts.step_up(token, used, address=ADDRESS).outcome is StepUpOutcome.WRONG
    assert accounts.step_up(token, ana.code(clock), address=ADDRESS).outcome is (StepUpOutcome.DONE)
    live = accounts.session_user(token)
    assert live is not None and not live.needs_step_up(clock.now())
    assert [r.action for r in _records(session, "session.stepped_up")] == ["session.stepped_up"]


def test_wrong_step_up_codes_lock_the_account_and_end_the_session(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    bo = enrol(accounts, clock, email="bo@centre.example")
    token = accounts.start_session(ana.user, address=ADDRESS)
    others = accounts.start_session(bo.user, address=ADDRESS)
    answers = [
        accounts.step_up(token, "000000", address=ADDRESS) for _ in range(LOCK_AFTER_FAILURES)
    ]
    outcomes = [answer.outcome for answer in answers]
    assert outcomes[-1] is StepUpOutcome.LOCKED
    assert answers[-1].locked_until == clock.now() + LOCK_DURATION
    assert set(outcomes[:-1]) == {StepUpOutcome.WRONG}
    assert accounts.session_user(token) is None
    ended = session.scalars(select(UserSession).where(UserSession.user_id == ana.user.id)).one()
    assert (ended.ended_at, ended.end_reason) == (clock.now(), SessionEnd.CODE_FAILURES.value)
    # Only this session: nobody else is signed out by Ana's lock.
    assert accounts.session_user(others) is not None
    assert accounts.step_up(token, ana.code(clock), address=ADDRESS).outcome is (
        StepUpOutcome.ENDED
    )


def test_a_locked_account_refuses_a_step_up_even_with_a_valid_code(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    """Someone locks the account with wrong passwords while its owner is signed in (in a
    browser the account has not trusted): the owner's valid code does not step up."""
    ana = enrol(accounts, clock)
    token = accounts.start_session(ana.user, address=ADDRESS)
    clock.advance(seconds=30)
    _lock_out(accounts, ana)
    locked_until = clock.now() + LOCK_DURATION
    refused = accounts.step_up(token, ana.code(clock), address=ADDRESS)
    assert (refused.outcome, refused.locked_until) == (StepUpOutcome.LOCKED, locked_until)
    assert _records(session, "session.stepped_up") == []
    [record] = [r for r in _records(session, "login.refused") if r.address == ADDRESS]
    assert (record.actor, record.subject, record.details) == (
        f"user:{ana.user.id}",
        f"user:{ana.user.id}",
        {"reason": "locked", "trusted_browser": False},
    )
    # Once the lock has run out, the same person steps up.
    clock.advance(seconds=LOCK_DURATION.total_seconds() + 1)
    assert accounts.step_up(token, ana.code(clock), address=ADDRESS).outcome is (StepUpOutcome.DONE)


def test_a_trusted_browser_steps_up_while_strangers_have_locked_the_account(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    """A browser the account trusts has a lock of its own: wrong passwords sent from
    elsewhere lock the account for every other browser, not for the owner's."""
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    device = _sign_in(accounts, ana, clock)
    checked = accounts.check_password(
        ana.user.email, PASSWORD, address=ADDRESS, device_tokens=(device,)
    )
    assert checked.pending_token is not None
    clock.advance(seconds=30)
    token = accounts.check_code(checked.pending_token, ana.code(clock), address=ADDRESS)
    assert token.session_token is not None
    _lock_out(accounts, ana)
    clock.advance(seconds=30)
    assert accounts.step_up(token.session_token, ana.code(clock), address=ADDRESS).outcome is (
        StepUpOutcome.DONE
    )


# -- the audit trail -------------------------------------------------------------------------


def test_every_sign_in_attempt_is_audited_with_its_facts(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    """What an investigator reads afterwards: who, from where, what happened and why."""
    ana = enrol(accounts, clock)
    me = f"user:{ana.user.id}"
    first_new = session.scalars(select(AuditRecord.id).order_by(AuditRecord.id.desc())).first()
    clock.advance(seconds=30)
    accounts.check_password("nobody@centre.example", PASSWORD, address=ATTACKER)
    _lock_out(accounts, ana)
    accounts.check_password(ana.user.email, PASSWORD, address=ATTACKER)  # locked
    accounts.unlock(ana.user, actor="user:1", address=ADDRESS)
    pending = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS).pending_token
    assert pending is not None
    accounts.check_code(pending, "000000", address=ADDRESS)
    token = accounts.check_code(pending, ana.code(clock), address=ADDRESS).session_token
    assert token is not None
    accounts.step_up(token, "000000", address=ADDRESS)
    clock.advance(seconds=30)
    accounts.step_up(token, ana.code(clock), address=ADDRESS)
    accounts.end_session(token, address=ADDRESS)
    accounts.disable(ana.user, actor="user:1", address=ADDRESS)
    accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS)

    def failed(
        reason: str, failures: int, *, locked: bool = False, trusted: bool = False
    ) -> dict[str, object]:
        return {
            "reason": reason,
            "failures": failures,
            "locked": locked,
            "trusted_browser": trusted,
        }

    until = (clock.now() - timedelta(seconds=30) + LOCK_DURATION).isoformat(timespec="seconds")
    expected = [
        ("login.failed", "anonymous", None, ATTACKER, {"reason": "unknown account"}),
        *[
            ("login.failed", me, me, ATTACKER, failed("password", n))
            for n in range(1, LOCK_AFTER_FAILURES)
        ],
        ("login.failed", me, me, ATTACKER, failed("password", LOCK_AFTER_FAILURES, locked=True)),
        (
            "account.locked",
            me,
            me,
            ATTACKER,
            {
                "scope": "untrusted_browsers",
                "device": None,
                "until": until,
                "failures": LOCK_AFTER_FAILURES,
            },
        ),
        ("login.refused", me, me, ATTACKER, {"reason": "locked", "trusted_browser": False}),
        ("account.unlocked", "user:1", me, ADDRESS, None),
        ("login.failed", me, me, ADDRESS, failed("code", 1)),
        ("login.succeeded", me, me, ADDRESS, {"trusted_browser": False}),
        # Signed in, the browser is trusted: its own failures count.
        ("login.failed", me, me, ADDRESS, failed("step-up code", 1, trusted=True)),
        ("session.stepped_up", me, me, ADDRESS, None),
        ("session.logged_out", me, me, ADDRESS, {"reason": "signed_out"}),
        ("account.disabled", "user:1", me, ADDRESS, None),
        (
            "login.refused",
            me,
            me,
            ADDRESS,
            {"reason": "disabled or not enrolled", "trusted_browser": False},
        ),
    ]
    records = session.scalars(
        select(AuditRecord).where(AuditRecord.id > (first_new or 0)).order_by(AuditRecord.id)
    )
    assert [(r.action, r.actor, r.subject, r.address, r.details) for r in records] == expected


def test_step_up_from_a_trusted_browser_is_not_blocked_by_the_accounts_lock(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana = enrol(accounts, clock)
    clock.advance(seconds=30)
    checked = accounts.check_password(ana.user.email, PASSWORD, address=ADDRESS)
    assert checked.pending_token is not None
    token = accounts.check_code(checked.pending_token, ana.code(clock), address=ADDRESS)
    assert token.session_token is not None
    _lock_out(accounts, ana)  # someone else's guesses, from browsers Ana never used
    clock.advance(seconds=30)
    done = accounts.step_up(token.session_token, ana.code(clock), address=ADDRESS)
    assert done.outcome is StepUpOutcome.DONE
    # Her own browser's failures lock it, and end the session they were made in.
    outcomes = [
        accounts.step_up(token.session_token, "000000", address=ADDRESS).outcome
        for _ in range(LOCK_AFTER_FAILURES)
    ]
    assert outcomes == [StepUpOutcome.WRONG] * (LOCK_AFTER_FAILURES - 1) + [StepUpOutcome.LOCKED]
    locked = _records(session, "account.locked")[-1]
    assert locked.details["scope"] == "trusted_browser"
    assert accounts.session_user(token.session_token) is None
