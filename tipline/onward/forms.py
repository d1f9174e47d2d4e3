"""The export form (Flask-WTF: CSRF). ``referrals.onward`` checks what it carries."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.validators import Length

from referrals.onward.services import MAX_SUMMARY_CHARS


class PackageForm(FlaskForm):
    # Read with referrals.typed_values.whole_number by the view (any text: no 500).
    agency_id = SelectField("To", validate_choice=False)
    summary = TextAreaField(
        "Summary for the recipient's analysts",
        validators=[Length(max=MAX_SUMMARY_CHARS * 2)],
        render_kw={"rows": 3},
    )
