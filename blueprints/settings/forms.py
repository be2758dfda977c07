"""Forms of the settings pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp, ValidationError

from security.passwords import MAX_LENGTH, password_problem


class ConfirmPasswordForm(FlaskForm):
    password = PasswordField(
        "Password",
        validators=[
            DataRequired("Enter your password."),
            Length(max=MAX_LENGTH, message="That is too long for a password."),
        ],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField("Confirm")


class DownloadCodesForm(FlaskForm):
    """The sheet's codes sent back once to be returned as a file; nothing is stored."""

    set_id = HiddenField(validators=[Regexp(r"^[2-9A-Z]{4}$")])
    codes = HiddenField(validators=[Regexp(r"^(?:[0-9]{8} ){9}[0-9]{8}$")])
    download = SubmitField("Download")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    password = PasswordField(
        "New password",
        validators=[DataRequired("Choose a new password.")],
        render_kw={"autocomplete": "new-password"},
        description="At least 8 characters. Spaces and any characters are fine.",
    )
    confirm = PasswordField(
        "Confirm new password",
        validators=[
            DataRequired("Type the new password again."),
            EqualTo("password", "The two passwords do not match."),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Change password")

    username: str = ""
    email: str = ""

    def validate_password(self, field) -> None:
        problem = password_problem(field.data, self.username, self.email)
        if problem:
            raise ValidationError(problem)


class EndSessionForm(FlaskForm):
    session = StringField(validators=[DataRequired(), Length(max=16)])
    submit = SubmitField("Log out")


class EndOtherSessionsForm(FlaskForm):
    submit = SubmitField("Log out of all other sessions")
