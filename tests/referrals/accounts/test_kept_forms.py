"""Forms kept across a sign-in: sealed with a key only the browser holds, given back once,
to the same account."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from referrals.accounts.kept_forms import (
    KEPT_FORM_LIFETIME,
    MAX_KEPT_BYTES,
    KeptForms,
    KeptFormTicket,
)
from referrals.accounts.models import KeptForm
from referrals.accounts.services import AccountService
from tests.clock import ManualClock

NARRATIVE = "Fictional: the facilitator offers the children on webcam every Friday night."
FIELDS = [
    ("summary", "Facilitator offers live-streamed abuse."),
    ("narrative", NARRATIVE),
    ("offence_types", "live_streaming_abuse"),
    ("offence_types", "trafficking"),
]
PAGE = "/partner/tips/new"


def _two_people(accounts: AccountService) -> tuple[int, int]:
    ana = accounts.create(email="ana@agency.example", role="analyst", actor="cli:test").user
    bo = accounts.create(email="bo@agency.example", role="analyst", actor="cli:test").user
    return ana.id, bo.id


def test_a_kept_form_is_ciphertext_at_rest_and_comes_back_once_to_its_owner(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana, bo = _two_people(accounts)
    kept = KeptForms(session, clock=clock)
    ticket = kept.keep(user_id=ana, path=PAGE, fields=FIELDS)
    assert ticket is not None

    stored = session.scalars(select(KeptForm)).one()
    for text in (NARRATIVE, "webcam", "Facilitator"):
        assert text.encode() not in stored.sealed_fields
        assert text.encode("utf-16-le") not in stored.sealed_fields
    assert ticket.key not in stored.sealed_fields and ticket.form_id == stored.id

    assert kept.take(ticket, user_id=bo, path=PAGE) is None  # someone else signed in
    assert kept.take(KeptFormTicket(ticket.form_id, bytes(32)), user_id=ana, path=PAGE) is None
    # A wrong key spends it: only its owner's browser holds the right one.
    assert session.scalars(select(KeptForm)).all() == []


def test_the_owner_gets_the_fields_back_in_order_and_only_once(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana, bo = _two_people(accounts)
    kept = KeptForms(session, clock=clock)
    ticket = kept.keep(user_id=ana, path=PAGE, fields=FIELDS)
    assert ticket is not None
    assert kept.take(ticket, user_id=bo, path=PAGE) is None
    assert kept.take(ticket, user_id=ana, path="/elsewhere") is None
    returned = kept.take(ticket, user_id=ana, path=PAGE)
    assert returned is not None and returned.fields == FIELDS and returned.path == PAGE
    assert kept.take(ticket, user_id=ana, path=PAGE) is None
    assert session.scalars(select(KeptForm)).all() == []


def test_two_forms_of_one_person_on_one_page_come_back_each_to_its_own_ticket(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    """Two tabs of the same form timed out: taking one leaves the other for its tab."""
    ana, _ = _two_people(accounts)
    kept = KeptForms(session, clock=clock)
    first = kept.keep(user_id=ana, path=PAGE, fields=FIELDS)
    second = kept.keep(user_id=ana, path=PAGE, fields=[("summary", "The other tab.")])
    assert first is not None and second is not None
    back = kept.take(second, user_id=ana, path=PAGE)
    assert back is not None and back.fields == [("summary", "The other tab.")]
    again = kept.take(first, user_id=ana, path=PAGE)
    assert again is not None and again.fields == FIELDS


def test_an_expired_form_is_not_given_back_and_is_swept(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana, _ = _two_people(accounts)
    kept = KeptForms(session, clock=clock)
    ticket = kept.keep(user_id=ana, path=PAGE, fields=FIELDS)
    assert ticket is not None
    clock.advance(seconds=KEPT_FORM_LIFETIME.total_seconds() + 1)
    assert kept.take(ticket, user_id=ana, path=PAGE) is None
    assert session.scalars(select(KeptForm)).all() == []


def test_a_form_too_big_to_keep_is_not_kept(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana, _ = _two_people(accounts)
    kept = KeptForms(session, clock=clock)
    assert kept.keep(user_id=ana, path=PAGE, fields=[("narrative", "x" * 2_000_000)]) is None
    assert session.scalars(select(KeptForm)).all() == []


def test_a_form_lasts_to_the_moment_and_others_forms_are_untouched(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana, bo = _two_people(accounts)
    kept = KeptForms(session, clock=clock)
    anas = kept.keep(user_id=ana, path=PAGE, fields=FIELDS)
    clock.advance(minutes=10)
    bos = kept.keep(user_id=bo, path=PAGE, fields=FIELDS)  # sweeping leaves Ana's alone
    assert anas is not None and bos is not None
    clock.advance(seconds=KEPT_FORM_LIFETIME.total_seconds() - 10 * 60 - 0.000001)
    returned = kept.take(anas, user_id=ana, path=PAGE)
    assert returned is not None and returned.fields == FIELDS
    clock.advance(seconds=10 * 60 + 0.000001)  # exactly Bo's form's lifetime
    assert kept.take(bos, user_id=bo, path=PAGE) is None
    assert session.scalars(select(KeptForm)).all() == []


def test_sweeping_says_how_many_expired_forms_it_deleted(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana, bo = _two_people(accounts)
    kept = KeptForms(session, clock=clock)
    for person in (ana, bo):
        kept.keep(user_id=person, path=PAGE, fields=FIELDS)
    assert kept.sweep() == 0
    clock.advance(seconds=KEPT_FORM_LIFETIME.total_seconds())
    assert kept.sweep() == 2


def test_a_form_up_to_the_size_limit_is_kept_whatever_its_script(
    accounts: AccountService, session: Session, clock: ManualClock
) -> None:
    ana, _ = _two_people(accounts)
    kept = KeptForms(session, clock=clock)
    # JSON of [["n", "…"]] is 11 bytes around the value; "ñ" is 2 bytes of UTF-8.
    room = MAX_KEPT_BYTES - 11
    largest = [("n", "ñ" * (room // 2) + "x" * (room % 2))]
    ticket = kept.keep(user_id=ana, path=PAGE, fields=largest)
    assert ticket is not None
    returned = kept.take(ticket, user_id=ana, path=PAGE)
    assert returned is not None and returned.fields == largest
    assert kept.keep(user_id=ana, path=PAGE, fields=[("n", "x" * (room + 1))]) is None
