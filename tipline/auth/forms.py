"""Forms of the sign-in and enrolment pages (Flask-WTF: CSRF on every one)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

CODE_HINT = "the 6-digit code your authenticator app shows now"
SIX_DIGITS = Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message=f"Enter {CODE_HINT}.")


class PasswordStepForm(FlaskForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    remember = BooleanField("Keep me signed in on this device after the browser closes")


class CodeStepForm(FlaskForm):
    code = StringField(
        "Authentication code",
        validators=[
            DataRequired(),
            SIX_DIGITS,
        ],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class EnrolmentForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(min=12, max=256)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )
    code = StringField(
        "Code from your authenticator app",
        validators=[
            DataRequired(),
            Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message=f"Enter {CODE_HINT}."),
        ],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class LogoutForm(FlaskForm):
    """An empty form: signing out is a POST with a CSRF token."""
