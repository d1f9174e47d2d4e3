"""Forms of the analysts' desk (Flask-WTF: CSRF on every one that changes something)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from referrals.triage.desk import DeclineReason

ANY = ""


class QueueFilterForm(FlaskForm):
    """The queue's filters: a GET form, so no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    priority = SelectField(
        "Priority",
        choices=[SelectChoice(ANY, "Any"), *(SelectChoice(p, p) for p in ("P1", "P2", "P3", "P4"))],
        default=ANY,
    )
    region = StringField("Region", validators=[Optional(), Length(max=200)])
    agency = SelectField("Agency", choices=[SelectChoice(ANY, "Any")], default=ANY)
    newer_than = IntegerField(
        "Received in the last (days)", validators=[Optional(), NumberRange(min=1, max=3650)]
    )
    older_than = IntegerField(
        "Received before the last (days)", validators=[Optional(), NumberRange(min=1, max=3650)]
    )
    has_matches = BooleanField("Only tips with matches")
    overdue = BooleanField("Only tips past their SLA")
    assigned = SelectField(
        "Claimed",
        choices=[
            SelectChoice(ANY, "Anyone's or no one's"),
            SelectChoice("unassigned", "Not claimed"),
            SelectChoice("mine", "Claimed by me"),
        ],
        default=ANY,
    )


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


DECLINE_LABELS = {
    DeclineReason.DUPLICATE: "A duplicate of a report the centre holds",
    DeclineReason.OUT_OF_SCOPE: "Out of scope (not child sexual exploitation, or not ours)",
    DeclineReason.INSUFFICIENT: "Not enough information to act on",
}


class DeclineForm(FlaskForm):
    reason = RadioField(
        "Why (the partner agency is told)",
        choices=[SelectChoice(reason.value, label) for reason, label in DECLINE_LABELS.items()],
        validators=[DataRequired("Choose why the tip is declined.")],
    )


class MergeForm(FlaskForm):
    referral = StringField(
        "Referral reference",
        validators=[
            DataRequired("Give the referral's reference, e.g. RF-2026-000042."),
            Length(max=20),
        ],
        render_kw={"spellcheck": "false", "autocomplete": "off", "placeholder": "RF-2026-000042"},
    )


class AskForm(FlaskForm):
    text = TextAreaField(
        "What the partner agency should send",
        validators=[
            DataRequired("Write what you need from the partner agency."),
            Length(max=10_000),
        ],
        render_kw={"rows": 5},
    )
