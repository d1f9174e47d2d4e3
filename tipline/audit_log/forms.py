"""The audit log's filter form: a GET form, so no CSRF token (it changes nothing)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, StringField
from wtforms.validators import Length, Optional


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
    since = DateField("From (UTC)", validators=[Optional()])
    until = DateField("Until (UTC, inclusive)", validators=[Optional()])

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        if valid and self.since.data and self.until.data and self.since.data > self.until.data:
            self.until.errors = [*self.until.errors, "This date is before the first one."]
            valid = False
        return valid
