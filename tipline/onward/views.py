"""``/referrals/<id>/packages``: a team lead exports the referral's package for another
country's centre or agency (a current authenticator code first, as for every release), after
its markings are checked for that recipient; the team downloads what was sealed, to give it by
hand where the recipient has no endpoint. Referrals out of reach do not exist."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from referrals.accounts.models import Role
from referrals.casework.models import Referral
from referrals.casework.services import ReferralNotFound
from referrals.handling.services import restrictions
from referrals.intake.models import Tip, TipStatus
from referrals.onward.models import OnwardPackage
from referrals.onward.services import OnwardPackages, PackageRefused
from referrals.typed_values import whole_number
from tipline import access, database
from tipline.addresses import client_address
from tipline.casework.reach import person, referral_or_404
from tipline.onward.forms import PackageForm

blueprint = Blueprint("onward", __name__, url_prefix="/referrals/<int:referral_id>/packages")


def _packages() -> OnwardPackages:
    rt = database.runtime()
    db_session = database.session()
    return OnwardPackages(
        db_session, audit=rt.audit(db_session), clock=rt.clock, keyring=rt.keyring, queue=rt.queue
    )


def _form_page(referral: Referral, form: PackageForm, status: int = 200) -> tuple[str, int]:
    choices = _packages().recipients()
    form.agency_id.choices = [
        SelectChoice(str(agency_id), f"{name}{' (delivered to its endpoint)' if linked else ''}")
        for agency_id, name, linked in choices
    ]
    db_session = database.session()
    tips = db_session.scalar(
        select(Tip.id)
        .where(Tip.referral_id == referral.id, Tip.status == TipStatus.ACCEPTED)
        .limit(1)
    )
    page = render_template(
        "onward/new.html",
        referral=referral,
        form=form,
        has_tips=tips is not None,
        restrictions=restrictions(db_session, referral.id),
    )
    return page, status


@blueprint.get("/new")
@access.roles(Role.LEAD, step_up=True)
def new(referral_id: int) -> tuple[str, int]:
    referral = referral_or_404(referral_id)
    return _form_page(referral, PackageForm(formdata=None))


@blueprint.post("")
@access.roles(Role.LEAD, step_up=True, back="casework.referrals")
def export(referral_id: int) -> Response | tuple[str, int]:
    referral = referral_or_404(referral_id)
    form = PackageForm()
    if not form.validate():
        return _form_page(referral, form, 400)
    try:
        package = _packages().export(
            person(),
            referral.id,
            whole_number(form.agency_id.data or ""),
            form.summary.data or "",
            address=client_address(),
        )
    except ReferralNotFound:
        abort(404)
    except PackageRefused as refused:
        form.summary.errors = [str(refused)]
        return _form_page(referral, form, 400)
    flash(
        f"Exported: package {package.external_reference} is sealed for the recipient"
        + (
            " and queued for delivery to its endpoint."
            if package.status == "sending"
            else "; download it below and send it by hand."
        ),
        "info",
    )
    return redirect(
        url_for("casework.referral", referral_id=referral.id, _anchor=f"package-{package.id}")
    )


@blueprint.get("/<int:package_id>.asc")
@access.roles(Role.ANALYST, Role.LEAD)
def sealed(referral_id: int, package_id: int) -> Response:
    """The package as sealed (only its recipient, and this centre, can open it)."""
    referral = referral_or_404(referral_id)
    package = database.session().get(OnwardPackage, package_id)
    if package is None or package.referral_id != referral.id:
        abort(404)
    rt = database.runtime()
    db_session = database.session()
    # For a recipient reached by hand, this is when the package leaves.
    rt.audit(db_session).record(
        "package.downloaded",
        actor=f"user:{person().id}",
        subject=f"referral:{referral.id}",
        address=client_address(),
        details={"package": package.id},
    )
    db_session.commit()
    name = package.external_reference.replace("/", "-")
    return Response(
        package.armored,
        mimetype="application/pgp-encrypted",
        headers={"Content-Disposition": f'attachment; filename="tipline-package-{name}.asc"'},
    )
