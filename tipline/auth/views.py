"""Sign in (password, then a code), step-up, sign out, and enrolment by a one-time link."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import segno
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter import Limiter
from flask_login import confirm_login, login_user, logout_user
from werkzeug.wrappers import Response

from referrals.accounts import totp
from referrals.accounts.lockout import minutes_left
from referrals.accounts.models import Role, SessionEnd
from referrals.accounts.passwords import PasswordRejected
from referrals.accounts.services import (
    AccountError,
    AccountService,
    CodeOutcome,
    EnrolmentAwaitingApproval,
    EnrolmentInvalid,
    LiveSession,
    StepUpOutcome,
)
from tipline import access, addresses, database, faces
from tipline.auth import devices
from tipline.auth.forms import CodeStepForm, EnrolmentForm, LogoutForm, PasswordStepForm
from tipline.auth.sessions import SignedInPerson, account_service, client_address, signed_in

blueprint = Blueprint("auth", __name__)

PENDING_SIGN_IN = "pending_sign_in"  # the pending sign-in's token, between the two steps
ENROLMENT = "enrolment"  # the enrolment link's token, moved out of the URL
ENROLMENT_SEED = "enrolment_seed"  # the TOTP seed being enrolled, sealed
GENERIC_FAILURE = "That e-mail address and password do not match an account that can sign in."
WRONG_CODE = "That code is not right, or was already used. Wait for the next one."
# Per client address, on each sign-in step's POSTs: the per-account lockout cannot stop one
# address trying a few passwords on each of many accounts.
SIGN_IN_RATE_LIMIT = "10 per minute; 100 per hour"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect.

    Refused (the home page instead): anything with a scheme or a host, ``//host`` and
    ``/\\host`` (browsers read a backslash as a slash), and any control character or space
    (browsers drop tabs and newlines, so ``/\\t/host`` would become ``//host``).
    """
    home = url_for("home.index")
    if not target or not target.startswith("/") or len(target) > 2000:
        return home
    if "\\" in target or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target):
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or parts.path.startswith("//"):
        return home
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _until(moment: datetime) -> str:
    """A lock's end, rounded up to the minute: the lock has surely run out by then."""
    rounded = moment.replace(second=0, microsecond=0)
    if rounded < moment:
        rounded += timedelta(minutes=1)
    return rounded.strftime("%H:%M UTC")


def _locked(until: datetime) -> str:
    minutes = minutes_left(until, database.runtime().clock.now())
    return (
        f"Too many failed attempts: this account is locked on this browser until {_until(until)} "
        f"({minutes} minute{'s' if minutes != 1 else ''} from now). A browser you have signed "
        "in with before can still sign in; an administrator can unlock the account sooner."
    )


def _end_current_session(service: AccountService, reason: SessionEnd) -> None:
    """Sign out whoever is signed in on this browser (before someone signs in or enrols)."""
    person = signed_in()
    if person is not None:
        service.end_session(person.token, address=client_address(), reason=reason)
    logout_user()


@blueprint.route("/login", methods=["GET", "POST"])
@access.public
def login() -> Response | str:
    form = PasswordStepForm()
    if form.validate_on_submit():
        service = account_service()
        checked = service.check_password(
            form.email.data or "",
            form.password.data or "",
            address=client_address(),
            roles=faces.roles(),  # only the people this face serves
            device_tokens=devices.presented(),
            remember=bool(form.remember.data),
            next_path=_safe_next(request.args.get("next")),
        )
        if checked.pending_token is not None:
            _end_current_session(service, SessionEnd.SIGNED_IN_AGAIN)
            session.clear()
            # Only the random token: which account, and where to go next, stay on the server.
            session[PENDING_SIGN_IN] = checked.pending_token
            return redirect(url_for("auth.code"))
        if checked.locked_until is not None:
            flash(_locked(checked.locked_until), "error")
        else:
            flash(GENERIC_FAILURE, "error")
    return render_template("auth/login.html", form=form)


def _start_again() -> Response:
    session.pop(PENDING_SIGN_IN, None)
    flash("That sign-in was not finished in time, or was already used: sign in again.", "error")
    return redirect(url_for("auth.login"))


@blueprint.route("/login/code", methods=["GET", "POST"])
@access.public
def code() -> Response | str:
    token = session.get(PENDING_SIGN_IN)
    if not isinstance(token, str):
        return redirect(url_for("auth.login"))
    service = account_service()
    if service.pending_sign_in(token) is None:
        return _start_again()
    form = CodeStepForm()
    if form.validate_on_submit():
        checked = service.check_code(token, form.code.data or "", address=client_address())
        if checked.outcome is CodeOutcome.SIGNED_IN:
            assert checked.user is not None and checked.session_token is not None  # noqa: S101
            # A new session from scratch: nothing from before the sign-in carries over.
            session.clear()
            live = LiveSession(user=checked.user, last_code_at=database.runtime().clock.now())
            login_user(SignedInPerson(live, checked.session_token))
            session.permanent = checked.remember
            response = redirect(_safe_next(checked.next_path))
            devices.trust(response, checked.device_token)
            return response
        if checked.outcome is CodeOutcome.RESTART:
            return _start_again()
        if checked.outcome is CodeOutcome.LOCKED and checked.locked_until is not None:
            session.pop(PENDING_SIGN_IN, None)
            flash(_locked(checked.locked_until), "error")
            return redirect(url_for("auth.login"))
        flash(WRONG_CODE, "error")
    return render_template("auth/code.html", form=form)


@blueprint.route("/login/step-up", methods=["GET", "POST"])
@access.roles(*Role)
def step_up() -> Response | str:
    target = _safe_next(request.args.get("next"))
    form = CodeStepForm()
    if form.validate_on_submit():
        person = signed_in()
        assert person is not None  # noqa: S101 - the access rule let only signed-in people in
        done = account_service().step_up(
            person.token, form.code.data or "", address=client_address()
        )
        if done.outcome is StepUpOutcome.DONE:
            confirm_login()
            return redirect(target)
        if done.outcome is StepUpOutcome.ENDED:
            logout_user()
            flash("Your session has ended: sign in again.", "info")
            return redirect(url_for("auth.login"))
        if done.outcome is StepUpOutcome.LOCKED and done.locked_until is not None:
            flash(_locked(done.locked_until), "error")
            return redirect(url_for("auth.step_up", next=target))
        flash(WRONG_CODE, "error")
    return render_template("auth/step_up.html", form=form, target=target)


@blueprint.post("/logout")
@access.public
def logout() -> Response:
    form = LogoutForm()
    if not form.validate_on_submit():
        abort(400)
    person = signed_in()
    if person is not None:
        account_service().end_session(person.token, address=client_address())
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


def _not_valid(reason: str) -> tuple[str, int]:
    return render_template("auth/enrol_invalid.html", reason=reason), 410


def _waiting(reason: str) -> tuple[str, int]:
    return render_template("auth/enrol_waiting.html", reason=reason), 403


@blueprint.get("/enrol")
@access.public
def enrol_link() -> Response | str | tuple[str, int]:
    token = request.args.get("token")
    if not token:
        return enrol()
    service = account_service()
    # Checked before anything else: a used or made-up link changes nothing for whoever is
    # signed in on this browser.
    try:
        service.enrolment_for(token)
    except EnrolmentAwaitingApproval as exc:
        return _waiting(str(exc))
    except EnrolmentInvalid as exc:
        return _not_valid(str(exc))
    _end_current_session(service, SessionEnd.SIGNED_OUT)
    session.clear()
    # Out of the address bar (and history, and any Referer) at once.
    session[ENROLMENT] = token
    return redirect(url_for("auth.enrol"))


@blueprint.route("/enrol/form", methods=["GET", "POST"])
@access.public
def enrol() -> Response | str | tuple[str, int]:
    service = account_service()
    token = session.get(ENROLMENT)
    if not isinstance(token, str) or not token:
        return _not_valid(
            "No enrolment link was opened in this browser: open the one you were given."
        )
    try:
        enrolment = service.enrolment_for(token)
    except EnrolmentAwaitingApproval as exc:
        return _waiting(str(exc))
    except EnrolmentInvalid as exc:
        return _not_valid(str(exc))
    person = service.find(str(enrolment.user_id))
    box = database.runtime().secret_box
    context = f"enrolment:{enrolment.id}".encode()
    sealed = session.get(ENROLMENT_SEED)
    if sealed is None:
        seed = totp.new_secret()
        session[ENROLMENT_SEED] = base64.b64encode(
            box.seal(seed.encode(), context=context)
        ).decode()
    else:
        seed = box.open(base64.b64decode(sealed), context=context).decode()
    form = EnrolmentForm()
    if form.validate_on_submit():
        try:
            service.complete_enrolment(
                token,
                password=form.password.data or "",
                totp_secret=seed,
                code=form.code.data or "",
                address=client_address(),
            )
        except PasswordRejected as exc:
            form.password.errors = [*form.password.errors, f"This password cannot be used: {exc}."]
        except EnrolmentAwaitingApproval as exc:
            return _waiting(str(exc))
        except EnrolmentInvalid as exc:
            return _not_valid(str(exc))
        except AccountError as exc:
            form.code.errors = [*form.code.errors, str(exc)]
        else:
            session.clear()
            flash("Your account is ready. Sign in with your password and a code.", "info")
            return redirect(url_for("auth.login"))
    uri = totp.provisioning_uri(seed, account=person.email)
    qr_svg = segno.make(uri, error="m").svg_inline(scale=4, title="QR code for your authenticator")
    return render_template(
        "auth/enrol.html",
        form=form,
        email=person.email,
        seed=" ".join(seed[i : i + 4] for i in range(0, len(seed), 4)),
        qr_svg=qr_svg,
        issuer=totp.ISSUER,
    )


def limit_sign_in(app: Flask, limiter: Limiter) -> None:
    """Throttle the password, code and step-up steps per client address (POSTs only; showing
    the pages is not counted). The limit is ``TIPLINE_SIGN_IN_RATE_LIMIT`` in the app's
    config."""
    app.config.setdefault("TIPLINE_SIGN_IN_RATE_LIMIT", SIGN_IN_RATE_LIMIT)
    limit = limiter.limit(
        lambda: str(current_app.config["TIPLINE_SIGN_IN_RATE_LIMIT"]),
        key_func=lambda: f"sign-in:{addresses.client_bucket()}",
        methods=["POST"],
    )
    for endpoint in ("auth.login", "auth.code", "auth.step_up"):
        # Wrapped where registered (the wrapper keeps the view's access rule).
        view: Callable[..., Any] = app.view_functions[endpoint]
        app.view_functions[endpoint] = limit(view)
