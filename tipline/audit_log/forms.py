"""The audit log's filter form: a GET form, so no CSRF token (it changes nothing)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, StringField
from wtforms.validators import Length, Optional, ValidationError
from wtforms.widgets import TextInput

from tipline import request_values


def _within_range(form: FlaskForm, field: DateField) -> None:
    if field.data is not None and not request_values.date_within_range(field.data):
        raise ValidationError(f"Give a date {request_values.RANGE_TEXT}.")


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    actor = StringField(
        "Actor", validators=[Optional(), Length(max=120)], render_kw={"spellcheck": "false"}
    )
    action = StringField(
        "Action", validators=[Optional(), Length(max=64)], render_kw={"spellcheck": "false"}
    )
    subject = StringField(
        "Subject", validators=[Optional(), Length(max=120)], render_kw={"spellcheck": "false"}
    )
    # Plain text in ISO 8601, not the browser's date box: that shows the date in the
    # browser's locale (mm/dd/yyyy for some), under a label that says UTC.
    since = DateField(
        "From (UTC)",
        validators=[Optional(), _within_range],
        format="%Y-%m-%d",
        widget=TextInput(),
        render_kw={"placeholder": "YYYY-MM-DD", "spellcheck": "false", "size": 10},
    )
    until = DateField(
        "Until (UTC, inclusive)",
        validators=[Optional(), _within_range],
        format="%Y-%m-%d",
        widget=TextInput(),
        render_kw={"placeholder": "YYYY-MM-DD", "spellcheck": "false", "size": 10},
    )

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        if valid and self.since.data and self.until.data and self.since.data > self.until.data:
            self.until.errors = [*self.until.errors, "This date is before the first one."]
            valid = False
        return valid


class VerifyForm(FlaskForm):
    """An empty form: verifying the chain is a POST with a CSRF token."""
