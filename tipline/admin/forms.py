"""Forms of the administration pages (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pycountry
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from referrals.accounts.models import Role

ROLE_LABELS = {
    Role.PARTNER: "Partner (an officer of a partner agency)",
    Role.ANALYST: "Analyst",
    Role.LEAD: "Team lead",
    Role.OFFICER: "Officer (of a law-enforcement unit)",
    Role.CASEWORKER: "Caseworker (a social worker: children's care plans)",
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
        "Role",
        choices=[SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()],
        # A combination the form accepts as it opens: an analyst, no agency, no team.
        default=Role.ANALYST.value,
    )
    agency = SelectField("Agency", choices=[SelectChoice(NONE, "None")], default=NONE)
    team = SelectField("Team", choices=[SelectChoice(NONE, "None")], default=NONE)
    unit = SelectField("Unit", choices=[SelectChoice(NONE, "None")], default=NONE)

    def offer(
        self,
        *,
        agencies: Sequence[tuple[str, str]],
        teams: Sequence[tuple[str, str]],
        units: Sequence[tuple[str, str]] = (),
    ) -> None:
        """The agencies, teams and units to choose from, as (value, label) pairs."""
        self.agency.choices = [
            SelectChoice(NONE, "None (staff accounts)"),
            *(SelectChoice(value, label) for value, label in agencies),
        ]
        self.team.choices = [
            SelectChoice(NONE, "None"),
            *(SelectChoice(value, label) for value, label in teams),
        ]
        self.unit.choices = [
            SelectChoice(NONE, "None"),
            *(SelectChoice(value, label) for value, label in units),
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
        if role == Role.OFFICER.value and not self.unit.data:
            self.unit.errors = [*self.unit.errors, "An officer's account needs their unit."]
            valid = False
        if role != Role.OFFICER.value and self.unit.data:
            self.unit.errors = [*self.unit.errors, "Only officers belong to a unit."]
            valid = False
        return valid


class AccountActionForm(FlaskForm):
    """An empty form: each account action is a POST with a CSRF token."""


MAX_REGIONS = 50
MAX_REGION_CHARS = 100


def _country_choices() -> list[SelectChoice]:
    countries = sorted(pycountry.countries, key=lambda country: country.name)
    return [SelectChoice(NONE, "Choose a country")] + [
        SelectChoice(country.alpha_2, f"{country.name} ({country.alpha_2})")
        for country in countries
    ]


class TeamForm(FlaskForm):
    """A team (and, as ``UnitForm``, a unit): a name and the jurisdiction it works."""

    name = StringField(
        "Name",
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[DataRequired(message="Give the team a name."), Length(max=120)],
    )
    country = SelectField(
        "Country",
        choices=_country_choices(),
        validators=[DataRequired(message="Choose the country the team works.")],
    )
    regions = TextAreaField(
        "Regions (optional)",
        validators=[Optional(), Length(max=MAX_REGIONS * (MAX_REGION_CHARS + 2))],
        render_kw={"rows": 4},
    )

    def region_list(self) -> list[str]:
        """The regions typed, one per line, blank lines left out."""
        return [line.strip() for line in (self.regions.data or "").splitlines() if line.strip()]

    def validate_regions(self, field: TextAreaField) -> None:
        regions = self.region_list()
        if len(regions) > MAX_REGIONS:
            raise ValidationError(f"Give at most {MAX_REGIONS} regions.")
        if any(len(region) > MAX_REGION_CHARS for region in regions):
            raise ValidationError(f"Write each region in at most {MAX_REGION_CHARS} characters.")


class UnitForm(TeamForm):
    name = StringField(
        "Name",
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[DataRequired(message="Give the unit a name."), Length(max=120)],
    )
    country = SelectField(
        "Country",
        choices=_country_choices(),
        validators=[DataRequired(message="Choose the country the unit works.")],
    )


# The triage rules, as an administrator reads them: (heading, [(rule, label, unit)]).
TRIAGE_RULE_GROUPS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Points each fact adds",
        (
            ("imminent_danger", "Imminent danger reported", "points"),
            ("live_streaming", "Abuse streamed live", "points"),
            ("ongoing_abuse", "Abuse reported as ongoing", "points"),
            ("victim_aged_0_5", "Youngest victim aged 0 to 5", "points"),
            ("victim_aged_6_12", "Youngest victim aged 6 to 12", "points"),
            ("victim_aged_13_17", "Youngest victim aged 13 to 17", "points"),
            ("victims_2_to_4", "2 to 4 victims", "points"),
            ("victims_5_or_more", "5 victims or more", "points"),
            ("location_city", "Located to a city", "points"),
            ("location_region", "Located to a region", "points"),
            ("matches_earlier_tips", "Shares identifiers with other tips", "points"),
            ("matches_open_referrals", "Shares identifiers with an open referral", "points"),
            ("tlp_red", "Partner marked it TLP:RED", "points"),
            ("tlp_amber_strict", "Partner marked it TLP:AMBER+STRICT", "points"),
        ),
    ),
    (
        "Priority from points",
        (
            ("p1_threshold", "P1 from", "points"),
            ("p2_threshold", "P2 from", "points"),
        ),
    ),
    (
        "Time allowed for the first triage decision",
        (
            ("sla_hours_p1", "P1", "hours"),
            ("sla_hours_p2", "P2", "hours"),
            ("sla_hours_p3", "P3", "hours"),
            ("sla_hours_p4", "P4 (informational)", "hours"),
        ),
    ),
    (
        "Correlation",
        (("correlation_cap", "A value shared by more tips than this stops linking", "tips"),),
    ),
)


class WholeNumberField(IntegerField):
    """A whole number, refused in the product's words rather than WTForms' ("Not a valid
    integer value")."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None
            raise ValueError("Give a whole number.") from None


class TriageRulesForm(FlaskForm):
    """One whole-number box per rule (added below), and the version the page showed."""

    based_on = HiddenField(validators=[DataRequired()])


for _heading, _rules in TRIAGE_RULE_GROUPS:
    for _name, _label, _unit in _rules:
        setattr(
            TriageRulesForm,
            _name,
            WholeNumberField(
                _label, validators=[InputRequired("Give a whole number.")], description=_unit
            ),
        )


SELECTOR_TYPE_LABELS = {
    "email": "E-mail address",
    "phone": "Phone number",
    "username": "Username (on a platform)",
    "ip": "IP address",
    "url": "URL",
    "payment_account": "Payment account",
    "device_id": "Device id",
}


class ExcludeSelectorForm(FlaskForm):
    """A value to exclude from correlation, typed by an administrator. Only its blind index is
    kept; the value is never stored, logged or shown again."""

    kind = SelectField(
        "Type",
        choices=[SelectChoice(value, label) for value, label in SELECTOR_TYPE_LABELS.items()],
    )
    value = StringField(
        "Value",
        validators=[DataRequired("Type the value to exclude."), Length(max=2048)],
        render_kw={"spellcheck": "false", "autocomplete": "off"},
    )
    platform = StringField(
        "Platform (usernames only)",
        validators=[Optional(), Length(max=100)],
        render_kw={"spellcheck": "false", "autocomplete": "off"},
    )
    region = StringField(
        "Country of a phone number written without +country code (e.g. PH)",
        validators=[Optional(), Length(min=2, max=2)],
        render_kw={"spellcheck": "false", "autocomplete": "off"},
    )
