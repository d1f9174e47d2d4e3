"""Forms of the aftercare pages (Flask-WTF: CSRF on each) and the words for the record's
choices. What is given is checked by ``referrals.aftercare``, which says what is wrong."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length

from referrals.aftercare.models import CareStatus, MilestoneKind, Placement, Sex

SEX_LABELS = {Sex.FEMALE: "Female", Sex.MALE: "Male", Sex.UNDISCLOSED: "Not disclosed"}
PLACEMENT_LABELS = {
    Placement.GOVERNMENT_SHELTER: "Government shelter",
    Placement.NGO_SHELTER: "NGO shelter",
    Placement.FOSTER_FAMILY: "Foster family",
    Placement.KINSHIP_CARE: "Kinship care",
    Placement.WITH_FAMILY: "Back with their family",
    Placement.INDEPENDENT: "Independent living",
}
STATUS_LABELS = {
    CareStatus.IN_CARE: "In care",
    CareStatus.REINTEGRATED: "Reintegrated",
    CareStatus.CLOSED: "Case closed",
}
MILESTONE_LABELS = {
    MilestoneKind.STORY_DOCUMENTED: "Story documented",
    MilestoneKind.CARE_PLAN_AGREED: "Care plan agreed",
    MilestoneKind.SCHOOL_ENROLLED: "Enrolled in school",
    MilestoneKind.WEEKLY_VISIT: "Weekly visit held",
    MilestoneKind.FAMILY_ASSESSMENT: "Family assessment",
    MilestoneKind.COURT_TESTIMONY_SUPPORT: "Court testimony support",
    MilestoneKind.REINTEGRATION: "Reintegration",
}


class AftercareForm(FlaskForm):
    """Any aftercare change: the fields are read as given (each page's form sends its own)."""

    age = StringField(validators=[Length(max=10)])
    sex = StringField(validators=[Length(max=20)])
    caseworker = StringField(validators=[Length(max=20)])
    placement = StringField(validators=[Length(max=40)])
    status = StringField(validators=[Length(max=20)])
    kind = StringField(validators=[Length(max=40)])
    on = StringField(validators=[Length(max=20)])
