"""Sign in (password, then a code), sign out, and enrolment by a one-time link."""

from __future__ import annotations

import base64
from collections.abc import Callable
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
from werkzeug.wrappers import Response

from referrals.accounts import totp
from referrals.accounts.passwords import PasswordRejected
from referrals.accounts.services import AccountError, EnrolmentInvalid
from tipline import access, addresses, database
from tipline.auth.forms import CodeStepForm, EnrolmentForm, LogoutForm, PasswordStepForm
from tipline.auth.sessions import SESSION_TOKEN, account_service, client_address

blueprint = Blueprint("auth", __name__)

PENDING_USER = "pending_user"  # passed the password step, not yet the code step
ENROLMENT = "enrolment"  # the enrolment link's token, moved out of the URL
ENROLMENT_SEED = "enrolment_seed"  # the TOTP seed being enrolled, sealed
GENERIC_FAILURE = "That e-mail address and password do not match an account that can sign in."
# Per client address, on each sign-in step's POSTs: the per-account lockout cannot stop one
# address trying a few passwords on each of many accounts.
SIGN_IN_RATE_LIMIT = "10 per minute; 100 per hour"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    parts = urlsplit(target)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@blueprint.route("/login", methods=["GET", "POST"])
@access.public
def login() -> Response | str:
    form = PasswordStepForm()
    if form.validate_on_submit():
        checked = account_service().check_password(
            form.email.data or "", form.password.data or "", address=client_address()
        )
        if checked.user is not None:
            session.clear()
            session[PENDING_USER] = checked.user.id
            session["remember"] = bool(form.remember.data)
            session["next"] = _safe_next(request.args.get("next"))
            return redirect(url_for("auth.code"))
        message = GENERIC_FAILURE
        if checked.locked:
            message = (
                "Too many failed attempts: this account is locked for a while. "
                "An administrator can unlock it."
            )
        flash(message, "error")
    return render_template("auth/login.html", form=form)


@blueprint.route("/login/code", methods=["GET", "POST"])
@access.public
def code() -> Response | str:
    user_id = session.get(PENDING_USER)
    if user_id is None:
        return redirect(url_for("auth.login"))
    form = CodeStepForm()
    if form.validate_on_submit():
        service = account_service()
        person = service.find(str(user_id))
        if service.check_code(person, form.code.data or "", address=client_address()):
            remember = bool(session.get("remember"))
            target = session.get("next") or url_for("home.index")
            # A new session from scratch: nothing from before the sign-in carries over.
            session.clear()
            session[SESSION_TOKEN] = service.start_session(person, address=client_address())
            session.permanent = remember
            return redirect(_safe_next(target))
        flash("That code is not right, or was already used. Wait for the next one.", "error")
    return render_template("auth/code.html", form=form)


@blueprint.post("/logout")
@access.public
def logout() -> Response:
    form = LogoutForm()
    if not form.validate_on_submit():
        abort(400)
    token = session.get(SESSION_TOKEN)
    if token:
        account_service().end_session(token, address=client_address())
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@blueprint.get("/enrol")
@access.public
def enrol_link() -> Response | str:
    token = request.args.get("token")
    if token:
        # Out of the address bar (and history, and any Referer) at once.
        session.clear()
        session[ENROLMENT] = token
        return redirect(url_for("auth.enrol"))
    return enrol()


@blueprint.route("/enrol/form", methods=["GET", "POST"])
@access.public
def enrol() -> Response | str:
    service = account_service()
    token = session.get(ENROLMENT)
    try:
        if not token:
            raise EnrolmentInvalid("open the enrolment link you were given")
        enrolment = service.enrolment_for(token)
    except EnrolmentInvalid as exc:
        return render_template("auth/enrol_invalid.html", reason=str(exc)), 410  # type: ignore[return-value]
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
        except EnrolmentInvalid as exc:
            return render_template("auth/enrol_invalid.html", reason=str(exc)), 410  # type: ignore[return-value]
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
    """Throttle the password and code steps per client address (POSTs only; showing the
    pages is not counted). The limit is ``TIPLINE_SIGN_IN_RATE_LIMIT`` in the app's config."""
    app.config.setdefault("TIPLINE_SIGN_IN_RATE_LIMIT", SIGN_IN_RATE_LIMIT)
    limit = limiter.limit(
        lambda: str(current_app.config["TIPLINE_SIGN_IN_RATE_LIMIT"]),
        key_func=lambda: f"sign-in:{addresses.client_bucket()}",
        methods=["POST"],
    )
    for endpoint in ("auth.login", "auth.code"):
        # Wrapped where registered (the wrapper keeps the view's access rule).
        view: Callable[..., Any] = app.view_functions[endpoint]
        app.view_functions[endpoint] = limit(view)
