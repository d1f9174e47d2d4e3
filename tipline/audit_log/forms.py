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


class IsoDateField(DateField):
    """A date typed as YYYY-MM-DD in a plain text box.

    Not the browser's date box: that shows the date in the browser's locale (mm/dd/yyyy for
    some) under a label that says UTC, and hides what is actually sent.
    """

    widget = TextInput()

    def __init__(self, label: str, **kwargs: Any) -> None:
        kwargs.setdefault("validators", [Optional(), _within_range])
        kwargs.setdefault(
            "render_kw", {"placeholder": "YYYY-MM-DD", "spellcheck": "false", "autocomplete": "off"}
        )
        super().__init__(label, format="%Y-%m-%d", **kwargs)

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("Write the date as YYYY-MM-DD, for example 2024-05-02.") from None


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
    since = IsoDateField("From (UTC)")
    until = IsoDateField("Until (UTC, inclusive)")

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        if valid and self.since.data and self.until.data and self.since.data > self.until.data:
            self.until.errors = [*self.until.errors, "This date is before the first one."]
            valid = False
        return valid


class VerifyForm(FlaskForm):
    """An empty form: verifying the chain is a POST with a CSRF token."""
