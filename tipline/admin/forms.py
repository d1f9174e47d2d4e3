"""Forms of the administration pages (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from referrals.accounts.models import Role

ROLE_LABELS = {
    Role.PARTNER: "Partner (an officer of a partner agency)",
    Role.ANALYST: "Analyst",
    Role.LEAD: "Team lead",
    Role.ADMIN: "Administrator",
}
NONE = ""  # the "no agency" / "no team" choice


class NewAccountForm(FlaskForm):
    email = EmailField(
        "E-mail address",
        validators=[DataRequired(), Length(max=254)],
        render_kw={"spellcheck": "false"},
    )
    role = SelectField(
        "Role", choices=[SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()]
    )
    agency = SelectField("Agency", choices=[SelectChoice(NONE, "None")])
    team = SelectField("Team", choices=[SelectChoice(NONE, "None")])

    def offer(self, *, agencies: list[tuple[str, str]], teams: list[tuple[str, str]]) -> None:
        """The agencies and teams to choose from, as (value, label) pairs."""
        self.agency.choices = [
            SelectChoice(NONE, "None (staff accounts)"),
            *(SelectChoice(value, label) for value, label in agencies),
        ]
        self.team.choices = [
            SelectChoice(NONE, "None"),
            *(SelectChoice(value, label) for value, label in teams),
        ]

    def validate(self, extra_validators: Any = None) -> bool:
        # Said here, against the fields, rather than as the service's command-line wording.
        valid = bool(super().validate(extra_validators))
        role = self.role.data
        if role == Role.PARTNER.value and not self.agency.data:
            self.agency.errors = [*self.agency.errors, "A partner account needs its agency."]
            valid = False
        if role != Role.PARTNER.value and self.agency.data:
            self.agency.errors = [*self.agency.errors, "Only partner accounts have an agency."]
            valid = False
        if self.team.data and role not in (Role.ANALYST.value, Role.LEAD.value):
            self.team.errors = [*self.team.errors, "Only analysts and leads belong to a team."]
            valid = False
        return valid


class AccountActionForm(FlaskForm):
    """An empty form: each account action is a POST with a CSRF token."""
