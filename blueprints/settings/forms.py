"""Forms of the settings pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length, Regexp

from blueprints.auth.forms import (
    AppCodeForm,
    BackupCodeForm,
    NewPasswordForm,
    backup_code_field,
    current_password_field,
)
from security.accounts import normalise_email


class ConfirmPasswordForm(FlaskForm):
    password = current_password_field()
    submit = SubmitField("Confirm")


def sheet_field() -> HiddenField:
    """Which sheet the page showed: a form acts on that sheet only, never on a newer one."""
    return HiddenField(validators=[DataRequired(), Regexp(r"^[2-9A-Z]{4}$")])


class DownloadCodesForm(FlaskForm):
    """Download the sheet this session is saving: the codes come from the server's copy."""

    sheet = sheet_field()
    download = SubmitField("Download")


class SaveSheetForm(BackupCodeForm):
    """I saved my codes: one code typed back from the new sheet."""

    code = backup_code_field(
        "Code from your new sheet",
        "8 digits, like 1234 5678.",
        "Enter the code from your new sheet.",
    )
    sheet = sheet_field()
    submit = SubmitField("Use these codes")


class VoidOldCodesForm(FlaskForm):
    password = current_password_field()
    sheet = sheet_field()
    submit = SubmitField("Void my old codes now")


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


class EmailForm(FlaskForm):
    """Send a confirmation link, or confirm with one: the CSRF token is the whole form."""


class ChangeEmailForm(FlaskForm):
    email = StringField(
        "New email address",
        validators=[
            DataRequired("Enter the new email address."),
            Length(max=254, message="That is too long for an email address."),
            Email("Enter an email address like name@example.com.", check_deliverability=False),
        ],
        render_kw={"autocomplete": "email", "type": "email"},
    )
    password = current_password_field()
    submit = SubmitField("Change email")

    def validate_email(self, field) -> None:
        field.data = normalise_email(field.data)
