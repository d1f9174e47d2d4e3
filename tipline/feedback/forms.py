"""Forms of the feedback pages (Flask-WTF: CSRF on each). What may leave is checked by
``referrals.feedback``; the forms carry it."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, TextAreaField
from wtforms.validators import Length

from referrals.feedback.services import MAX_TEXT_CHARS


class FeedbackForm(FlaskForm):
    """What the lead writes; the next page shows exactly what would leave."""

    agency_id = SelectField("To the agency", coerce=int, validate_choice=False)
    text = TextAreaField(
        "What the agency is told",
        validators=[Length(max=MAX_TEXT_CHARS * 2)],
        render_kw={"rows": 6},
    )
    include_outcome = BooleanField("Add the outcome's counts (children safeguarded, arrests)")


class ReleaseForm(FlaskForm):
    """What the lead was shown, carried back to be released as it was shown."""

    agency_id = HiddenField()
    text = HiddenField()
    include_outcome = HiddenField()
    version = HiddenField()
