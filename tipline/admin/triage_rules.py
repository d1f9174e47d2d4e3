"""``/admin/triage-rules``: the weights, thresholds, SLA hours and correlation cap that triage
uses, changed by an administrator (step-up, audited, a new version each time; open tips are
then re-scored by a job)."""

from __future__ import annotations

import dataclasses

from flask import flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from referrals.accounts.models import Role
from referrals.triage import tasks
from referrals.triage.rules import InvalidRules, RuleBook, RulesChangedMeanwhile, TriageRules
from tipline import access, database
from tipline.addresses import client_address
from tipline.admin.forms import TRIAGE_RULE_GROUPS, TriageRulesForm
from tipline.admin.views import actor, blueprint


def _book() -> RuleBook:
    rt = database.runtime()
    db_session = database.session()
    return RuleBook(db_session, audit=rt.audit(db_session), clock=rt.clock)


def _page(
    form: TriageRulesForm, book: RuleBook, version: int, status: int = 200
) -> tuple[str, int]:
    return (
        render_template(
            "admin/triage_rules.html",
            form=form,
            groups=TRIAGE_RULE_GROUPS,
            version=version,
            history=book.history()[:20],
        ),
        status,
    )


@blueprint.get("/triage-rules")
@access.roles(Role.ADMIN)
def triage_rules() -> tuple[str, int]:
    book = _book()
    current = book.current()
    database.session().commit()  # the defaults become version 1 the first time they are read
    form = TriageRulesForm(data={**current.rules.as_json(), "based_on": str(current.version)})
    return _page(form, book, current.version)


@blueprint.post("/triage-rules")
@access.roles(Role.ADMIN, step_up=True, back="admin.triage_rules")
def change_triage_rules() -> Response | tuple[str, int]:
    book = _book()
    current = book.current()
    form = TriageRulesForm()
    if not form.validate():
        return _page(form, book, current.version, 400)
    values = {field.name: form[field.name].data for field in dataclasses.fields(TriageRules)}
    based_on_text = form.based_on.data or ""
    if not (based_on_text.isascii() and based_on_text.isdigit() and len(based_on_text) <= 9):
        flash("The page was out of date: here are the rules as they are now.", "error")
        return redirect(url_for("admin.triage_rules"))
    try:
        rules = TriageRules(**values)
        based_on = int(based_on_text)
        version = book.change(rules, based_on=based_on, actor=actor(), address=client_address())
    except InvalidRules as exc:
        name = str(exc).split(" ", 1)[0]
        if name in form:
            form[name].errors = [*form[name].errors, _sentence(str(exc))]
        else:
            form.form_errors.append(_sentence(str(exc)))
        return _page(form, book, current.version, 400)
    except RulesChangedMeanwhile as exc:
        database.session().rollback()
        flash(
            f"Nothing was changed: {exc}. Here are the rules as they are now; make your change "
            "again if it still stands.",
            "error",
        )
        return redirect(url_for("admin.triage_rules"))
    database.session().commit()
    database.runtime().queue.enqueue(tasks.rescore_open_tips, version)
    flash(f"Version {version} is in force; open tips are being scored again under it.", "info")
    return redirect(url_for("admin.triage_rules"))


def _sentence(message: str) -> str:
    # "p2_threshold must be lower than p1_threshold" in the words of the page's labels.
    labels = {name: label for _, rules in TRIAGE_RULE_GROUPS for name, label, _ in rules}
    for name, label in sorted(labels.items(), key=lambda item: -len(item[0])):
        message = message.replace(name, f"“{label}”")
    return message[:1].upper() + message[1:] + "."
