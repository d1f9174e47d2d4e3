"""Forms of the referral pages (Flask-WTF: CSRF on each). What a move needs is checked by the
lifecycle (``referrals.casework``), which names everything missing at once; the form only
carries it."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length


class MoveForm(FlaskForm):
    """One move of a referral, with whatever it may need (the page shows the fields the move
    needs, and a note for every move)."""

    seen_stage = HiddenField()
    note = TextAreaField("Note (sealed: only people working the referral read it)",
                         validators=[Length(max=20_000)])  # fmt: skip
    unit_id = StringField("Unit", validators=[Length(max=20)])
    unit_reference = StringField("Your unit's reference", validators=[Length(max=200)])
    children_safeguarded = StringField("Children safeguarded", validators=[Length(max=20)])
    suspects_arrested = StringField("Suspects arrested", validators=[Length(max=20)])
    close_reason = StringField("Why", validators=[Length(max=40)])
