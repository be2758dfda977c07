"""Forms of the settings pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Regexp

from blueprints.auth.forms import (
    AppCodeForm,
    BackupCodeForm,
    NewPasswordForm,
    current_password_field,
)


class ConfirmPasswordForm(FlaskForm):
    password = current_password_field()
    submit = SubmitField("Confirm")


class DownloadCodesForm(FlaskForm):
    """The sheet's codes sent back once to be returned as a file; nothing is stored."""

    set_id = HiddenField(validators=[Regexp(r"^[2-9A-Z]{4}$")])
    codes = HiddenField(validators=[Regexp(r"^(?:[0-9]{8} ){9}[0-9]{8}$")])
    download = SubmitField("Download")


class ChangePasswordForm(NewPasswordForm):
    """The new-password fields and rules of recovery, plus the current password."""

    current_password = current_password_field("Current password")
    submit = SubmitField("Change password")


class EndSessionForm(FlaskForm):
    session = StringField(validators=[DataRequired(), Length(max=16)])
    submit = SubmitField("Log out")


class EndOtherSessionsForm(FlaskForm):
    submit = SubmitField("Log out of all other sessions")


class AppSetupForm(AppCodeForm):
    password = current_password_field()
    submit = SubmitField("Turn on")


class TurnOffAppForm(FlaskForm):
    password = current_password_field()
    submit = SubmitField("Turn off")


class StartAppSetupForm(FlaskForm):
    submit = SubmitField("Set up authentication app")


class SecureWithPasswordForm(FlaskForm):
    password = current_password_field()
    submit = SubmitField("Secure my account")


class SecureWithCodeForm(BackupCodeForm):
    submit = SubmitField("Secure my account")


class CheckCodeForm(BackupCodeForm):
    """Check a saved code: the password, then a code from the sheet (same shape rules)."""

    password = current_password_field()
    submit = SubmitField("Check")


class DismissForm(FlaskForm):
    submit = SubmitField("Got it, that was me")
