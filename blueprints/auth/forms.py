"""Forms of sign-up, log-in and recovery."""

from __future__ import annotations

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, ValidationError

from extensions import db
from models import User
from security.accounts import (
    MAX_IDENTIFIER_LENGTH,
    normalise_email,
    normalise_phone,
    normalise_username,
    username_problem,
)
from security.backup_codes import CodeFormatError, normalise_code_input
from security.passwords import MAX_LENGTH, password_problem
from security.signing_in import USERNAME_TAKEN
from security.totp import normalise_totp_input

IDENTIFIER_LABEL = "Phone number, username, or email"


def _identifier_field() -> StringField:
    return StringField(
        IDENTIFIER_LABEL,
        validators=[
            DataRequired("Enter your username, email or phone number."),
            Length(max=MAX_IDENTIFIER_LENGTH, message="That is too long for a username."),
        ],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
    )


def _new_password_field(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[DataRequired("Choose a password.")],
        render_kw={"autocomplete": "new-password"},
        description="At least 8 characters. Spaces and any characters are fine.",
    )


def current_password_field(label: str = "Password") -> PasswordField:
    return PasswordField(
        label,
        validators=[
            DataRequired("Enter your password."),
            Length(max=MAX_LENGTH, message="That is too long for a password."),
        ],
        render_kw={"autocomplete": "current-password"},
    )


class LoginForm(FlaskForm):
    identifier = _identifier_field()
    password = current_password_field()
    submit = SubmitField("Log in")


class SignupForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[DataRequired("Choose a username."), Length(max=60)],
        render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"},
        description="3 to 30 characters: letters, digits, dots and underscores.",
    )
    email = StringField(
        "Email (optional)",
        validators=[
            Optional(),
            Length(max=254),
            Email("Enter an email address like name@example.com.", check_deliverability=False),
        ],
        render_kw={"autocomplete": "email", "type": "email"},
    )
    phone = StringField(
        "Phone number (optional)",
        validators=[Optional(), Length(max=30)],
        render_kw={"autocomplete": "tel", "type": "tel"},
    )
    password = _new_password_field("Password")
    submit = SubmitField("Sign up")

    def validate_username(self, field) -> None:
        username = normalise_username(field.data)
        problem = username_problem(username)
        if problem:
            raise ValidationError(problem)
        if db.session.scalar(select(User.id).where(User.username == username)):
            raise ValidationError(USERNAME_TAKEN)
        field.data = username

    # Whether another account has this email or phone is never said: the sign-up answers the
    # same either way, and the address's owner is told (security/signing_in.py:sign_up).
    def validate_email(self, field) -> None:
        field.data = normalise_email(field.data)

    def validate_phone(self, field) -> None:
        try:
            field.data = normalise_phone(field.data)
        except ValueError as error:
            raise ValidationError(str(error)) from error

    def validate_password(self, field) -> None:
        problem = password_problem(field.data, self.username.data or "", self.email.data or "")
        if problem:
            raise ValidationError(problem)


class TroubleForm(FlaskForm):
    identifier = _identifier_field()
    use_backup_code = SubmitField("Use a backup code")


# A typed one-time code: phones offer a digit keyboard and the code from a text or an app.
ONE_TIME_CODE_INPUT = {
    "autocomplete": "one-time-code",
    "inputmode": "numeric",
    "autocapitalize": "none",
    "spellcheck": "false",
}


def _normalised(field, normalise) -> None:
    """Replace the field's text by its normal form, or fail with the normaliser's message."""
    try:
        field.data = normalise(field.data)
    except CodeFormatError as error:
        raise ValidationError(str(error)) from error


def backup_code_field(label: str, description: str, empty: str) -> StringField:
    """A field for one backup code; its form's validate_code normalises it."""
    return StringField(
        label,
        validators=[DataRequired(empty)],
        render_kw=ONE_TIME_CODE_INPUT,
        description=description,
    )


class BackupCodeForm(FlaskForm):
    code = backup_code_field(
        "Backup code",
        "8 digits from your backup code sheet, like 1234 5678.",
        "Enter a backup code.",
    )
    submit = SubmitField("Submit")

    def validate_code(self, field) -> None:
        _normalised(field, normalise_code_input)


class AppCodeForm(FlaskForm):
    code = StringField(
        "6-digit code",
        validators=[DataRequired("Enter the 6-digit code from your authentication app.")],
        render_kw=ONE_TIME_CODE_INPUT,
    )
    submit = SubmitField("Confirm")

    def validate_code(self, field) -> None:
        _normalised(field, normalise_totp_input)


class NewPasswordForm(FlaskForm):
    password = _new_password_field("New password")
    confirm = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Type the new password again."),
            EqualTo("password", "The two passwords do not match."),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Create a new password")

    username: str = ""
    email: str = ""

    def validate_password(self, field) -> None:
        problem = password_problem(field.data, self.username, self.email)
        if problem:
            raise ValidationError(problem)
