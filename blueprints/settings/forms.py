"""Forms of the settings pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Regexp

from blueprints.auth.forms import NewPasswordForm
from security.passwords import MAX_LENGTH


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


class ChangePasswordForm(NewPasswordForm):
    """The new-password fields and rules of recovery, plus the current password."""

    current_password = PasswordField(
        "Current password",
        validators=[DataRequired("Enter your current password."), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField("Change password")


class EndSessionForm(FlaskForm):
    session = StringField(validators=[DataRequired(), Length(max=16)])
    submit = SubmitField("Log out")


class EndOtherSessionsForm(FlaskForm):
    submit = SubmitField("Log out of all other sessions")
