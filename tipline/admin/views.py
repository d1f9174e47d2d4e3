"""Administration: people's accounts and the partner agencies (role ``admin`` only).

Admins manage people, agencies and keys but never see tip content. Every change goes through
``AccountService`` with the admin as the actor, so it lands in the audit log, and needs a
current code from the admin's authenticator (step-up). A one-time enrolment link is rendered
straight into the answer to the POST that made it: never in an address, never in a flash
message (the session cookie would carry it). Under the four-eyes rule the link works only
once a second administrator has approved it on the pending-enrolments page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from referrals.accounts.models import (
    Approval,
    EnrolmentPurpose,
    EnrolmentToken,
    Role,
    Team,
    Unit,
    User,
)
from referrals.accounts.services import (
    AccountError,
    AccountService,
    Enrolment,
    TeamService,
    UnitService,
)
from referrals.intake.agencies import AgencyService
from referrals.intake.models import Agency
from tipline import access, database
from tipline.admin.forms import NONE, AccountActionForm, NewAccountForm, TeamForm, UnitForm
from tipline.auth.sessions import account_service, client_address

blueprint = Blueprint("admin", __name__, url_prefix="/admin")


@dataclass(frozen=True)
class AccountRow:
    """One line of the accounts list."""

    user: User
    agency: str | None
    enrolled: bool
    disabled: bool
    locked: bool
    awaiting_approval: bool


def actor() -> str:
    """The signed-in admin, as the audit log names them."""
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule admitted only signed-in admins
    return f"user:{person.id}"


def _enrolment_link(token: str) -> str:
    # The link the `tipline user` commands print: built on the configured address, never on
    # this request's Host header (which a client chooses).
    return f"{database.runtime().settings.base_url}/enrol?token={token}"


def _agency_names() -> dict[int, str]:
    rows = database.session().execute(select(Agency.id, Agency.name).order_by(Agency.name))
    return {row.id: row.name for row in rows}


def _offer_choices(form: NewAccountForm) -> None:
    teams = database.session().scalars(select(Team.name).order_by(Team.name))
    units = database.session().scalars(select(Unit.name).order_by(Unit.name))
    form.offer(
        agencies=[(str(agency_id), name) for agency_id, name in _agency_names().items()],
        teams=[(name, name) for name in teams],
        units=[(name, name) for name in units],
    )


def _target(service: AccountService, user_id: int) -> User:
    try:
        return service.find(str(user_id))
    except AccountError:
        abort(404, description="There is no such account.")


def _enrolment_page(enrolment: Enrolment, *, heading: str) -> str:
    return render_template(
        "admin/enrolment.html",
        heading=heading,
        account=enrolment.user,
        link=_enrolment_link(enrolment.token),
        expires_at=enrolment.expires_at,
        awaiting_approval=enrolment.awaiting_approval,
    )


@blueprint.get("/users")
@access.roles(Role.ADMIN)
def users() -> str:
    now = database.runtime().clock.now()
    agencies = _agency_names()
    query = select(User).options(selectinload(User.team)).order_by(User.email)
    waiting = {row.user_id for row in account_service().pending_enrolments()}
    rows = [
        AccountRow(
            user=user,
            agency=agencies.get(user.agency_id) if user.agency_id is not None else None,
            enrolled=user.enrolled_at is not None,
            disabled=user.disabled_at is not None,
            locked=user.locked_until is not None and user.locked_until > now,
            awaiting_approval=user.id in waiting,
        )
        for user in database.session().scalars(query)
    ]
    units = {row.id: row.name for row in database.session().execute(select(Unit.id, Unit.name))}
    return render_template(
        "admin/users.html", rows=rows, units=units, action_form=AccountActionForm()
    )


@blueprint.route("/users/new", methods=["GET", "POST"])
@access.roles(Role.ADMIN, step_up=True)
def create_user() -> str:
    form = NewAccountForm()
    _offer_choices(form)
    if form.validate_on_submit():
        try:
            enrolment = account_service().create(
                email=form.email.data or "",
                role=form.role.data,
                agency_id=int(form.agency.data) if form.agency.data != NONE else None,
                team=form.team.data or None,
                unit=form.unit.data or None,
                actor=actor(),
                address=client_address(),
            )
        except AccountError as exc:
            message = f"{str(exc)[:1].upper()}{str(exc)[1:]}."
            target = form.email
            if "agency" in str(exc):
                target = form.agency
            elif "team" in str(exc):
                target = form.team
            elif "unit" in str(exc):
                target = form.unit
            elif "role" in str(exc):
                target = form.role
            target.errors = [*target.errors, message]
        else:
            return _enrolment_page(enrolment, heading="Account created")
    return render_template("admin/new_user.html", form=form)


def _act(user_id: int, action: str) -> Response:
    """Disable, enable or unlock an account, then back to the list."""
    service = account_service()
    user = _target(service, user_id)
    person = access.current_person()
    if action == "disable" and person is not None and person.id == user.id:
        flash("You cannot disable your own account: ask another administrator.", "error")
        return redirect(url_for("admin.users"))
    if action == "disable":
        service.disable(user, actor=actor(), address=client_address())
        flash(f"{user.email} is disabled and signed out everywhere.", "info")
    elif action == "enable":
        service.enable(user, actor=actor(), address=client_address())
        flash(f"{user.email} is enabled again.", "info")
    else:
        service.unlock(user, actor=actor(), address=client_address())
        flash(f"{user.email} is unlocked.", "info")
    return redirect(url_for("admin.users"))


@blueprint.post("/users/<int:user_id>/disable")
@access.roles(Role.ADMIN, step_up=True, back="admin.users")
def disable_user(user_id: int) -> Response:
    return _act(user_id, "disable")


@blueprint.post("/users/<int:user_id>/enable")
@access.roles(Role.ADMIN, step_up=True, back="admin.users")
def enable_user(user_id: int) -> Response:
    return _act(user_id, "enable")


@blueprint.post("/users/<int:user_id>/unlock")
@access.roles(Role.ADMIN, step_up=True, back="admin.users")
def unlock_user(user_id: int) -> Response:
    return _act(user_id, "unlock")


@blueprint.post("/users/<int:user_id>/reset-2fa")
@access.roles(Role.ADMIN, step_up=True, back="admin.users")
def reset_second_factor(user_id: int) -> Response | str:
    service = account_service()
    user = _target(service, user_id)
    person = access.current_person()
    if person is not None and person.id == user.id:
        # It would sign them out with no way back in but the link on this very page.
        flash("You cannot reset your own second factor: ask another administrator.", "error")
        return redirect(url_for("admin.users"))
    enrolment = service.reset_second_factor(user, actor=actor(), address=client_address())
    return _enrolment_page(enrolment, heading="Second factor reset")


@dataclass(frozen=True)
class PendingRow:
    """One enrolment link waiting for a second administrator."""

    enrolment: EnrolmentToken
    agency: str | None
    requested_by: str  # in words
    purpose: str  # in words
    mine: bool  # the signed-in admin asked for it (or is its subject): another must decide


PURPOSES = {
    EnrolmentPurpose.NEW_ACCOUNT.value: "new account",
    EnrolmentPurpose.SECOND_FACTOR_RESET.value: "second factor reset",
    EnrolmentPurpose.FIRST_ADMIN.value: "first administrator",
}


def _requester(actor: str | None, emails: dict[int, str]) -> str:
    """The audit log's actor, as an administrator reads it."""
    if actor is None:
        return "unknown"
    kind, _, name = actor.partition(":")
    if kind == "user" and name.isdigit():
        return emails.get(int(name), actor)
    if kind == "cli":
        return f"{name} (command line on the server)"
    return actor


@blueprint.get("/enrolments")
@access.roles(Role.ADMIN)
def enrolments() -> str:
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule admitted only signed-in admins
    pending = account_service().pending_enrolments()
    agencies = _agency_names()
    admins = database.session().execute(
        select(User.id, User.email).where(User.role == Role.ADMIN.value)
    )
    emails = {row.id: row.email for row in admins}
    rows = [
        PendingRow(
            enrolment=row,
            agency=agencies.get(row.user.agency_id) if row.user.agency_id is not None else None,
            requested_by=_requester(row.requested_by, emails),
            purpose=PURPOSES.get(row.purpose, row.purpose),
            mine=row.requested_by == f"user:{person.id}" or row.user_id == person.id,
        )
        for row in pending
    ]
    return render_template("admin/enrolments.html", rows=rows, action_form=AccountActionForm())


def _decide(enrolment_id: int, *, approve: bool) -> Response:
    person = access.current_person()
    assert person is not None  # noqa: S101 - the access rule admitted only signed-in admins
    service = account_service()
    decide = service.approve_enrolment if approve else service.refuse_enrolment
    try:
        row = decide(enrolment_id, approver=person, address=client_address())
    except AccountError as exc:
        flash(f"{str(exc)[:1].upper()}{str(exc)[1:]}.", "error")
        return redirect(url_for("admin.enrolments"))
    email = service.find(str(row.user_id)).email
    if row.approval == Approval.APPROVED.value:
        flash(
            f"Approved: the enrolment link for {email} works now, until "
            f"{row.expires_at:%Y-%m-%d %H:%M} UTC.",
            "info",
        )
    else:
        flash(f"Refused: the enrolment link for {email} will never work.", "info")
    return redirect(url_for("admin.enrolments"))


@blueprint.post("/enrolments/<int:enrolment_id>/approve")
@access.roles(Role.ADMIN, step_up=True, back="admin.enrolments")
def approve_enrolment(enrolment_id: int) -> Response:
    return _decide(enrolment_id, approve=True)


@blueprint.post("/enrolments/<int:enrolment_id>/refuse")
@access.roles(Role.ADMIN, step_up=True, back="admin.enrolments")
def refuse_enrolment(enrolment_id: int) -> Response:
    return _decide(enrolment_id, approve=False)


@dataclass(frozen=True)
class AgencyRow:
    """One line of the agencies list."""

    agency: Agency
    fingerprint: str | None
    expires_at: datetime | None
    expired: bool


@blueprint.get("/agencies")
@access.roles(Role.ADMIN)
def agencies() -> str:
    rt = database.runtime()
    now = rt.clock.now()
    rows = []
    for agency in AgencyService(database.session(), keyring=rt.keyring, clock=rt.clock).all():
        key = agency.current_key
        expires_at = key.expires_at if key is not None else None
        rows.append(
            AgencyRow(
                agency=agency,
                fingerprint=key.fingerprint if key is not None else None,
                expires_at=expires_at,
                expired=expires_at is not None and expires_at <= now,
            )
        )
    return render_template("admin/agencies.html", rows=rows)


@dataclass(frozen=True)
class TeamRow:
    """One line of the teams list."""

    team: Team
    members: int


@blueprint.get("/teams")
@access.roles(Role.ADMIN)
def teams() -> str:
    return _teams_page(TeamForm())


@blueprint.post("/teams")
@access.roles(Role.ADMIN, step_up=True, back="admin.teams")
def add_team() -> Response | str:
    # A team's jurisdiction decides whose analysts see which tips: a current code first.
    form = TeamForm()
    if form.validate_on_submit():
        db_session = database.session()
        try:
            team = TeamService(db_session, audit=database.runtime().audit(db_session)).add(
                name=form.name.data or "",
                country=form.country.data or "",
                regions=form.region_list(),
                actor=actor(),
            )
        except AccountError as exc:
            db_session.rollback()
            target = form.country if "country" in str(exc) else form.name
            target.errors = [*target.errors, f"{str(exc)[:1].upper()}{str(exc)[1:]}."]
        except IntegrityError:  # another admin made a team of that name a moment ago
            db_session.rollback()
            form.name.errors = [*form.name.errors, "A team of that name exists."]
        else:
            flash(f"The team {team.name} is created: analysts and leads can now join it.", "info")
            return redirect(url_for("admin.teams"))
    return _teams_page(form)


@dataclass(frozen=True)
class UnitRow:
    """One line of the units list."""

    unit: Unit
    members: int


@blueprint.get("/units")
@access.roles(Role.ADMIN)
def units() -> str:
    return _units_page(UnitForm())


@blueprint.post("/units")
@access.roles(Role.ADMIN, step_up=True, back="admin.units")
def add_unit() -> Response | str:
    # Referrals are handed to units, and their officers read what is handed: a current code.
    form = UnitForm()
    if form.validate_on_submit():
        db_session = database.session()
        try:
            unit = UnitService(db_session, audit=database.runtime().audit(db_session)).add(
                name=form.name.data or "",
                country=form.country.data or "",
                regions=form.region_list(),
                actor=actor(),
            )
        except AccountError as exc:
            db_session.rollback()
            target = form.country if "country" in str(exc) else form.name
            target.errors = [*target.errors, f"{str(exc)[:1].upper()}{str(exc)[1:]}."]
        except IntegrityError:  # another admin registered a unit of that name a moment ago
            db_session.rollback()
            form.name.errors = [*form.name.errors, "A unit of that name exists."]
        else:
            flash(
                f"The unit {unit.name} is registered: its officers' accounts can now be made, "
                "and leads can hand referrals to it.",
                "info",
            )
            return redirect(url_for("admin.units"))
    return _units_page(form)


def _units_page(form: UnitForm) -> str:
    query = (
        select(Unit, func.count(User.id))
        .outerjoin(User, User.unit_id == Unit.id)
        .group_by(Unit.id)
        .order_by(Unit.name)
    )
    rows = [
        UnitRow(unit=unit, members=members) for unit, members in database.session().execute(query)
    ]
    return render_template("admin/units.html", rows=rows, form=form)


def _teams_page(form: TeamForm) -> str:
    query = (
        select(Team, func.count(User.id))
        .outerjoin(User, User.team_id == Team.id)
        .group_by(Team.id)
        .order_by(Team.name)
    )
    rows = [
        TeamRow(team=team, members=members) for team, members in database.session().execute(query)
    ]
    return render_template("admin/teams.html", rows=rows, form=form)
