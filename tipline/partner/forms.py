"""The web form a partner's officer writes a tip in, and its translation to ``tipline.tip/1``.

The form covers the fields an officer can reasonably type; a partner with more to send (files'
hashes, suspects, per-selector details) uses the API. Messages never repeat what was typed:
like the document's own errors, they can reach logs.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pycountry
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from referrals.intake.document import SCHEMA_ID, InvalidTipDocument, load_schema

_SCHEMA = load_schema()
OFFENCE_TYPES: list[str] = _SCHEMA["properties"]["offence_types"]["items"]["enum"]
TLP_MARKINGS: list[str] = _SCHEMA["properties"]["handling"]["properties"]["tlp"]["enum"]
SELECTOR_TYPES: list[str] = _SCHEMA["$defs"]["selector"]["properties"]["type"]["enum"]
MAX_SELECTORS: int = _SCHEMA["properties"]["selectors"]["maxItems"]
MAX_VICTIMS: int = _SCHEMA["properties"]["victims"]["maxItems"]
MAX_AGE: int = _SCHEMA["properties"]["victims"]["items"]["properties"]["approx_age"]["maximum"]

OFFENCE_LABELS = {
    "csam_possession": "Possession of child sexual abuse material",
    "csam_distribution": "Distribution of child sexual abuse material",
    "csam_production": "Production of child sexual abuse material",
    "live_streaming_abuse": "Live-streamed abuse",
    "contact_abuse": "Contact (hands-on) abuse",
    "grooming": "Grooming",
    "online_enticement": "Online enticement",
    "sextortion": "Sextortion",
    "trafficking": "Trafficking",
    "other": "Other (say what in the narrative)",
}
TLP_LABELS = {
    "CLEAR": "TLP:CLEAR: no limit on disclosure",
    "GREEN": "TLP:GREEN: the community, not published",
    "AMBER": "TLP:AMBER: the centre's organisation and its partners, on a need-to-know basis",
    "AMBER+STRICT": "TLP:AMBER+STRICT: the centre's organisation only",
    "RED": "TLP:RED: the named recipients only",
}
SELECTOR_HINT = (
    "One per line, as type: value. Types: "
    + ", ".join(SELECTOR_TYPES)
    + ". A username also names its platform: username@ExampleChat: sunnyday88."
)
NONCE = re.compile(r"[0-9a-f]{32}")
_SELECTOR_LINE = re.compile(r"(?P<type>[a-z_]+)(?:@(?P<platform>[^:]*))?:(?P<value>.*)")
UNKNOWN_AGE = {"?", "unknown"}


def new_submission_nonce() -> str:
    """A random key for one rendering of the form: sending it twice stores one tip."""
    return secrets.token_hex(16)


def _country_choices() -> list[SelectChoice]:
    countries = sorted(pycountry.countries, key=lambda country: country.name)
    return [SelectChoice("", "Choose a country")] + [
        SelectChoice(country.alpha_2, f"{country.name} ({country.alpha_2})")
        for country in countries
    ]


@dataclass(frozen=True)
class _Selector:
    line: int  # 1-based line number in the text area
    entry: dict[str, str]


class MultiCheckboxField(SelectMultipleField):
    """Several choices as a group of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class TipForm(FlaskForm):
    submission = HiddenField(validators=[Regexp(NONCE.pattern + "$")])
    external_reference = StringField(
        "Your reference (optional)",
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[Optional(), Length(max=200)],
    )
    summary = TextAreaField(
        "Summary",
        validators=[DataRequired(message="Write a summary."), Length(max=1000)],
        render_kw={"rows": 3},
    )
    narrative = TextAreaField(
        "Narrative",
        validators=[DataRequired(message="Write the narrative."), Length(max=100_000)],
        render_kw={"rows": 12},
    )
    imminent_danger = BooleanField("A child is in imminent danger")
    ongoing_abuse = BooleanField("The abuse is ongoing")
    live_streaming = BooleanField("The abuse is streamed live")
    country = SelectField(
        "Country",
        choices=_country_choices(),
        validators=[DataRequired(message="Choose the country.")],
    )
    region = StringField(
        "Region or province (optional)",
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[Optional(), Length(max=100)],
    )
    city = StringField(
        "City or town (optional)",
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        validators=[Optional(), Length(max=100)],
    )
    offence_types = MultiCheckboxField(
        "Offences",
        choices=[SelectChoice(value, OFFENCE_LABELS.get(value, value)) for value in OFFENCE_TYPES],
        # Checked in validate_offence_types: DataRequired would mark every checkbox required.
    )
    victim_count = IntegerField(
        "Number of victims (optional)",
        validators=[Optional(), NumberRange(min=0, max=MAX_VICTIMS)],
        render_kw={"inputmode": "numeric"},
    )
    victim_ages = StringField(
        "Approximate ages of the victims (optional)",
        validators=[Optional(), Length(max=500)],
    )
    selectors = TextAreaField(
        "Selectors (optional)",
        validators=[Optional(), Length(max=200_000)],
        render_kw={"rows": 6, "spellcheck": "false", "autocapitalize": "off"},
    )
    # Radio buttons, not a select: each marking's meaning is a sentence, and a select box cut
    # the longest ones off.
    tlp = RadioField(
        "Handling (Traffic Light Protocol)",
        choices=[SelectChoice(value, TLP_LABELS.get(value, value)) for value in TLP_MARKINGS],
        default="AMBER",
        validators=[InputRequired(message="Choose who the centre may share this tip with.")],
    )

    def validate_offence_types(self, field: MultiCheckboxField) -> None:
        if not field.data:
            raise ValidationError("Tick at least one offence.")

    def validate_victim_ages(self, field: StringField) -> None:
        ages = self._ages()
        count = self.victim_count.data
        if count is not None and len(ages) > count:
            raise ValidationError("You gave more ages than victims.")
        if len(ages) > MAX_VICTIMS:
            raise ValidationError(f"Give at most {MAX_VICTIMS} ages.")

    def validate_selectors(self, field: TextAreaField) -> None:
        self._selectors()

    # -- the document -------------------------------------------------------------------------

    def document(self, *, reported_at: datetime, reference: str) -> dict[str, Any]:
        """The tip document this form describes (validate it with ``parse_tip_document``)."""
        location: dict[str, str] = {"country": self.country.data or ""}
        if self.region.data:
            location["region"] = self.region.data
        if self.city.data:
            location["city"] = self.city.data
        document: dict[str, Any] = {
            "schema": SCHEMA_ID,
            "external_reference": reference,
            "reported_at": reported_at.isoformat(),
            "summary": self.summary.data or "",
            "narrative": self.narrative.data or "",
            "urgency": {
                "imminent_danger": bool(self.imminent_danger.data),
                "ongoing_abuse": bool(self.ongoing_abuse.data),
                "live_streaming": bool(self.live_streaming.data),
            },
            "location": location,
            "offence_types": list(self.offence_types.data or []),
            "handling": {"tlp": self.tlp.data},
        }
        ages = self._ages()
        count = max(self.victim_count.data or 0, len(ages))
        if count:
            ages += [None] * (count - len(ages))
            document["victims"] = [{"approx_age": age, "sex": "unknown"} for age in ages]
        selectors = self._selectors()
        if selectors:
            document["selectors"] = [selector.entry for selector in selectors]
        return document

    def place_error(self, error: InvalidTipDocument) -> None:
        """Show a document error beside the field it is about (or above the form)."""
        parts = error.path.split("/")[1:]
        message = error.message[:1].upper() + error.message[1:] + "."
        fields = {
            "external_reference": self.external_reference,
            "summary": self.summary,
            "narrative": self.narrative,
            "urgency": self.imminent_danger,
            "offence_types": self.offence_types,
            "victims": self.victim_ages,
            "handling": self.tlp,
            "location/country": self.country,
            "location/region": self.region,
            "location/city": self.city,
        }
        if parts[:1] == ["selectors"] and len(parts) >= 2 and parts[1].isdigit():
            selectors = self._selectors()
            index = int(parts[1])
            line = selectors[index].line if index < len(selectors) else index + 1
            self.selectors.errors = [*self.selectors.errors, f"Line {line}: {message}"]
            return
        field = fields.get("/".join(parts[:2])) or fields.get(parts[0] if parts else "")
        if field is None:
            self.form_errors.append(message)
        else:
            field.errors = [*field.errors, message]

    def _ages(self) -> list[int | None]:
        text = (self.victim_ages.data or "").strip()
        if not text:
            return []
        ages: list[int | None] = []
        for item in (part.strip().lower() for part in text.split(",")):
            if item in UNKNOWN_AGE:
                ages.append(None)
            elif item.isdigit() and int(item) <= MAX_AGE:
                ages.append(int(item))
            else:
                raise ValidationError(
                    f"Write each age as a whole number from 0 to {MAX_AGE}, or ? when unknown, "
                    "separated by commas."
                )
        return ages

    def _selectors(self) -> list[_Selector]:
        found = []
        for number, raw in enumerate((self.selectors.data or "").splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            match = _SELECTOR_LINE.fullmatch(line)
            if match is None or match["type"] not in SELECTOR_TYPES:
                raise ValidationError(
                    f"Line {number}: write type: value, the type being one of "
                    + ", ".join(SELECTOR_TYPES)
                    + "."
                )
            kind, platform, value = match["type"], match["platform"], match["value"].strip()
            if not value:
                raise ValidationError(f"Line {number}: the value is missing after the colon.")
            entry = {"type": kind, "value": value}
            if kind == "username":
                if not (platform or "").strip():
                    raise ValidationError(
                        f"Line {number}: name the platform, as username@Platform: name."
                    )
                entry["platform"] = (platform or "").strip()
            elif platform is not None:
                raise ValidationError(
                    f"Line {number}: only a username takes a platform (@…) before the colon."
                )
            found.append(_Selector(line=number, entry=entry))
        if len(found) > MAX_SELECTORS:
            raise ValidationError(f"Give at most {MAX_SELECTORS} selectors.")
        return found


class ReplyForm(FlaskForm):
    """An officer's answer to the centre about one of the agency's tips."""

    text = TextAreaField(
        "Your answer to the centre",
        validators=[
            DataRequired("Write your answer to the centre."),
            Length(max=10_000, message="Write at most 10,000 characters."),
        ],
        render_kw={"rows": 6},
    )
