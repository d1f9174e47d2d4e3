"""Forms of the operations pages (Flask-WTF: CSRF on each). The operations service checks
what is given and names every problem at once; the forms only carry it."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField
from wtforms.validators import Length


class PlanForm(FlaskForm):
    """Referrals (``referral`` checkboxes), units (``lead_unit``, ``partner_unit`` checkboxes),
    the date and the region; the lists are read from the request as they are."""

    planned_for = StringField("Planned date", validators=[Length(max=40)])
    region = StringField("Region (optional, no finer than a region)", validators=[Length(max=200)])


class StepForm(FlaskForm):
    """A step of an operation; the outcome's counts are read per referral from the request."""

    seen_status = HiddenField()
