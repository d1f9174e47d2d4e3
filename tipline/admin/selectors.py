"""``/admin/selectors``: values kept out of correlation (junk, shared help lines, a platform's
own addresses) and values shared by so many tips that they stopped linking.

Administrators never see tip content: a value is excluded by typing it (only its blind index is
computed and stored), and an over-correlating value is shown by its type, how many tips carry
it and a short reference to its index, never the value itself.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from crypto import InvalidSelector
from referrals.accounts.models import Role
from referrals.triage.correlation import SelectorRulings, UnknownSelectorValue, reference_of
from referrals.triage.models import SelectorRule
from referrals.triage.rules import RuleBook
from tipline import access, database
from tipline.addresses import client_address
from tipline.admin.forms import SELECTOR_TYPE_LABELS, AccountActionForm, ExcludeSelectorForm
from tipline.admin.views import actor, blueprint


def _rulings() -> SelectorRulings:
    rt = database.runtime()
    db_session = database.session()
    return SelectorRulings(
        db_session, audit=rt.audit(db_session), clock=rt.clock, blind_index=rt.blind_index
    )


def _page(form: ExcludeSelectorForm, status: int = 200) -> tuple[str, int]:
    rt = database.runtime()
    db_session = database.session()
    rulings = _rulings()
    cap = RuleBook(db_session, audit=rt.audit(db_session), clock=rt.clock).current().rules
    return (
        render_template(
            "admin/selectors.html",
            form=form,
            cap=cap.correlation_cap,
            over=rulings.over_correlating(cap=cap.correlation_cap),
            excluded=rulings.ruled(SelectorRule.EXCLUDED),
            allowed=rulings.ruled(SelectorRule.ALLOWED),
            reference_of=reference_of,
            type_labels=SELECTOR_TYPE_LABELS,
            action_form=AccountActionForm(),
        ),
        status,
    )


@blueprint.get("/selectors")
@access.roles(Role.ADMIN)
def selectors() -> tuple[str, int]:
    return _page(ExcludeSelectorForm())


@blueprint.post("/selectors/exclude")
@access.roles(Role.ADMIN, step_up=True, back="admin.selectors")
def exclude_selector() -> Response | tuple[str, int]:
    form = ExcludeSelectorForm()
    if not form.validate():
        return _page(form, 400)
    try:
        _rulings().exclude_value(
            form.kind.data or "",
            form.value.data or "",
            platform=(form.platform.data or "").strip() or None,
            default_region=(form.region.data or "").strip().upper() or None,
            actor=actor(),
            address=client_address(),
        )
    except InvalidSelector as exc:
        # crypto's messages never quote the value.
        form.value.errors = [*form.value.errors, f"{str(exc)[:1].upper()}{str(exc)[1:]}."]
        form.value.data = ""
        return _page(form, 400)
    database.session().commit()
    flash("Excluded: that value no longer links tips, from now on and in what is shown.", "info")
    return redirect(url_for("admin.selectors"))


def _rule(reference: str, rule: SelectorRule | None, done: str) -> Response:
    try:
        _rulings().rule(reference, rule, actor=actor(), address=client_address())
    except UnknownSelectorValue:
        database.session().rollback()
        flash("No selector value has that reference.", "error")
    else:
        database.session().commit()
        flash(done, "info")
    return redirect(url_for("admin.selectors"))


@blueprint.post("/selectors/<reference>/exclude")
@access.roles(Role.ADMIN, step_up=True, back="admin.selectors")
def exclude_held_selector(reference: str) -> Response:
    return _rule(reference, SelectorRule.EXCLUDED, "Excluded: that value no longer links tips.")


@blueprint.post("/selectors/<reference>/allow")
@access.roles(Role.ADMIN, step_up=True, back="admin.selectors")
def allow_selector(reference: str) -> Response:
    return _rule(
        reference,
        SelectorRule.ALLOWED,
        "Allowed: new tips carrying that value link to every tip that carries it.",
    )


@blueprint.post("/selectors/<reference>/clear")
@access.roles(Role.ADMIN, step_up=True, back="admin.selectors")
def clear_selector(reference: str) -> Response:
    return _rule(reference, None, "Cleared: the value follows the cap again.")
