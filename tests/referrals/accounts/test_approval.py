"""Four eyes: with two administrators, an account's enrolment link works only once a second
administrator approves it; every decision audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from referrals.accounts import totp
from referrals.accounts.models import Approval
from referrals.accounts.services import (
    ENROLMENT_LIFETIME,
    AccountError,
    AccountService,
    ApprovalRule,
    EnrolmentAwaitingApproval,
    EnrolmentInvalid,
)
from referrals.audit.models import AuditRecord
from tests.clock import ManualClock
from tests.conftest import RegisteredAgency
from tests.referrals.accounts.conftest import ADDRESS, PASSWORD, Enrolled, ServiceFactory, enrol
from tests.referrals.accounts.test_totp import rfc6238_code


@pytest.fixture
def admins(accounts: AccountService, clock: ManualClock) -> tuple[Enrolled, Enrolled]:
    first = enrol(accounts, clock, "root@centre.example", "admin")
    second = enrol(accounts, clock, "second@centre.example", "admin")
    return first, second


@pytest.fixture
def four_eyes(service_on: ServiceFactory, session: Session) -> AccountService:
    return service_on(session, ApprovalRule.AUTO)


def _enrol_with(accounts: AccountService, clock: ManualClock, token: str) -> None:
    secret = totp.new_secret()
    accounts.complete_enrolment(
        token,
        password=PASSWORD,
        totp_secret=secret,
        code=rfc6238_code(secret, clock.now()),
        address=ADDRESS,
    )


def test_with_two_admins_a_partner_link_waits_for_a_second_admin(
    four_eyes: AccountService,
    session: Session,
    clock: ManualClock,
    admins: tuple[Enrolled, Enrolled],
    agencies: dict[str, RegisteredAgency],
) -> None:
    requester, approver = admins
    created = four_eyes.create(
        email="officer@agency-a.example",
        role="partner",
        agency_id=agencies["agency-a"].id,
        actor=f"user:{requester.user.id}",
    )
    assert created.awaiting_approval
    with pytest.raises(EnrolmentAwaitingApproval, match="second administrator's approval"):
        four_eyes.enrolment_for(created.token)
    with pytest.raises(EnrolmentAwaitingApproval):
        _enrol_with(four_eyes, clock, created.token)
    (waiting,) = four_eyes.pending_enrolments()
    assert waiting.user.email == "officer@agency-a.example"

    with pytest.raises(AccountError, match="another administrator"):
        four_eyes.approve_enrolment(waiting.id, approver=requester.user)
    clock.advance(hours=48)
    four_eyes.approve_enrolment(waiting.id, approver=approver.user, address=ADDRESS)
    # It works now, for the whole lifetime from the approval.
    clock.advance(seconds=ENROLMENT_LIFETIME.total_seconds() - 60)
    _enrol_with(four_eyes, clock, created.token)
    assert four_eyes.find("officer@agency-a.example").enrolled_at is not None
    assert four_eyes.pending_enrolments() == []

    (record,) = session.scalars(
        select(AuditRecord).where(AuditRecord.action == "account.enrolment_approved")
    )
    assert record.actor == f"user:{approver.user.id}"
    assert record.subject == f"user:{created.user.id}" and record.address == ADDRESS
    assert record.details["requested_by"] == f"user:{requester.user.id}"


def test_a_refused_link_never_works_and_is_decided_once(
    four_eyes: AccountService,
    session: Session,
    clock: ManualClock,
    admins: tuple[Enrolled, Enrolled],
) -> None:
    requester, approver = admins
    created = four_eyes.create(
        email="ana@centre.example", role="analyst", actor=f"user:{requester.user.id}"
    )
    (waiting,) = four_eyes.pending_enrolments()
    refused = four_eyes.refuse_enrolment(waiting.id, approver=approver.user)
    assert refused.approval == Approval.REFUSED.value
    with pytest.raises(EnrolmentInvalid, match="already been used or has expired"):
        four_eyes.enrolment_for(created.token)
    with pytest.raises(AccountError, match="not waiting"):
        four_eyes.approve_enrolment(waiting.id, approver=approver.user)
    actions = session.scalars(select(AuditRecord.action).where(AuditRecord.action.like("%enrol%")))
    assert list(actions).count("account.enrolment_refused") == 1


def test_a_second_factor_reset_waits_for_approval_too(
    accounts: AccountService,
    four_eyes: AccountService,
    clock: ManualClock,
    admins: tuple[Enrolled, Enrolled],
) -> None:
    requester, approver = admins
    ana = enrol(accounts, clock)  # enrolled with the rule off
    reset = four_eyes.reset_second_factor(ana.user, actor=f"user:{requester.user.id}")
    assert reset.awaiting_approval
    with pytest.raises(EnrolmentAwaitingApproval):
        four_eyes.enrolment_for(reset.token)
    (waiting,) = four_eyes.pending_enrolments()
    assert waiting.purpose == "second_factor_reset"
    four_eyes.approve_enrolment(waiting.id, approver=approver.user)
    assert four_eyes.enrolment_for(reset.token).user_id == ana.user.id


def test_resetting_one_of_two_admins_still_needs_the_other(
    four_eyes: AccountService, admins: tuple[Enrolled, Enrolled]
) -> None:
    # Counted before the reset: otherwise the reset admin would stop counting, and one admin
    # left alone would need no approval for the link that takes the account over.
    requester, other = admins
    assert four_eyes.reset_second_factor(
        other.user, actor=f"user:{requester.user.id}"
    ).awaiting_approval


def test_command_line_accounts_follow_the_rule_and_any_admin_approves_them(
    four_eyes: AccountService, admins: tuple[Enrolled, Enrolled]
) -> None:
    created = four_eyes.create(email="ana@centre.example", role="analyst", actor="cli:operator")
    assert created.awaiting_approval
    (waiting,) = four_eyes.pending_enrolments()
    four_eyes.approve_enrolment(waiting.id, approver=admins[0].user)
    assert four_eyes.enrolment_for(created.token)


def test_auto_needs_two_enrolled_admins(
    service_on: ServiceFactory, accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    auto = service_on(session, ApprovalRule.AUTO)
    first = auto.first_admin(email="root@centre.example", actor="cli:root")
    assert first is not None and not first.awaiting_approval  # the first admin is exempt
    _enrol_with(auto, clock, first.token)
    second = auto.create(email="second@centre.example", role="admin", actor="user:1")
    assert not second.awaiting_approval  # one admin: nobody else could approve
    _enrol_with(auto, clock, second.token)
    assert auto.create(email="ana@centre.example", role="analyst", actor="user:1").awaiting_approval
    assert not accounts.create(
        email="bo@centre.example", role="analyst", actor="user:1"
    ).awaiting_approval  # off
    on = service_on(session, ApprovalRule.ON)
    assert on.create(email="cy@centre.example", role="lead", actor="cli:root").awaiting_approval


def test_only_another_enabled_administrator_decides_and_only_in_time(
    accounts: AccountService,
    four_eyes: AccountService,
    clock: ManualClock,
    admins: tuple[Enrolled, Enrolled],
) -> None:
    requester, subject = admins
    four_eyes.reset_second_factor(subject.user, actor="cli:operator")
    (waiting,) = four_eyes.pending_enrolments()
    analyst = enrol(accounts, clock, "ana@centre.example", "analyst").user
    disabled = enrol(accounts, clock, "third@centre.example", "admin").user
    accounts.disable(disabled, actor="cli:operator")
    refusals = [
        (subject.user, "another administrator must decide on an enrolment you asked for"),
        (analyst, "only an administrator can decide on an enrolment"),
        (disabled, "only an administrator can decide on an enrolment"),
    ]
    for approver, reason in refusals:
        with pytest.raises(AccountError) as refused:
            four_eyes.approve_enrolment(waiting.id, approver=approver)
        assert str(refused.value) == reason
    clock.advance(seconds=ENROLMENT_LIFETIME.total_seconds())
    assert four_eyes.pending_enrolments() == []  # out of time: no longer listed
    with pytest.raises(AccountError) as late:
        four_eyes.approve_enrolment(waiting.id, approver=requester.user)
    assert str(late.value) == "that enrolment link has expired: ask for a new one"
