"""Forms of the consent actions (Flask-WTF: CSRF on each). ``referrals.handling`` checks what
they carry and names every problem."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length


class ConsentRequestForm(FlaskForm):
    agency_id = StringField("Agency", validators=[Length(max=20)])
    # "unit:3" or "agency:5": whom the information would go to.
    recipient = StringField("To be shared with", validators=[Length(max=30)])
    text = TextAreaField("Anything to add (optional)", validators=[Length(max=20_000)])


class ConsentAnswerForm(FlaskForm):
    reply_id = StringField("The agency's reply", validators=[Length(max=20)])
    answer = RadioField(
        "Its answer",
        choices=[
            SelectChoice("granted", "Consent given"),
            SelectChoice("refused", "Consent refused"),
        ],
    )
