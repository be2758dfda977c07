"""Forms of the settings pages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp, ValidationError

from blueprints.auth.forms import (
    ONE_TIME_CODE_INPUT,
    AppCodeForm,
    BackupCodeForm,
    NewPasswordForm,
    backup_code_field,
    current_password_field,
)
from security.accounts import normalise_email
from security.backup_codes import CodeFormatError, normalise_code_input
from security.passwords import MAX_LENGTH
from security.totp import normalise_totp_input

FACTOR_SHAPE = "Enter the 6-digit code from your app, or an 8-digit backup code like 1234 5678."


def normalise_factor(raw: str | None) -> str:
    """A code from the app (6 digits) or a backup code (8 digits), without spaces and dashes;
    CodeFormatError for anything else."""
    try:
        return normalise_totp_input(raw)
    except CodeFormatError:
        pass
    try:
        return normalise_code_input(raw)
    except CodeFormatError as error:
        raise CodeFormatError(FACTOR_SHAPE) from error


LOST_PHONE = "Lost your phone? Type a backup code from your sheet instead."


def factor_field(
    label: str = "Code from your authentication app, or a backup code",
    hint: str | None = LOST_PHONE,
):
    """The second secret "Confirm it's you" asks of an account with an app (security/confirm.py);
    optional in the form, the use case says when it is missing."""
    return StringField(
        label, validators=[Optional()], render_kw=ONE_TIME_CODE_INPUT, description=hint
    )


class ConfirmItsYou(FlaskForm):
    """The password, and on an account with an app a code from it (or a backup code)."""

    password = current_password_field()
    factor = factor_field()

    def validate_factor(self, field) -> None:
        if field.data:
            try:
                field.data = normalise_factor(field.data)
            except CodeFormatError as error:
                raise ValidationError(str(error)) from error

    def codes(self) -> tuple[str, ...]:
        return (self.factor.data,) if self.factor.data else ()


class ConfirmPasswordForm(ConfirmItsYou):
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


class VoidOldCodesForm(ConfirmItsYou):
    sheet = sheet_field()
    submit = SubmitField("Void my old codes now")


class ChangePasswordForm(NewPasswordForm, ConfirmItsYou):
    """The new-password fields and rules of recovery, plus the current password."""

    current_password = current_password_field("Current password")
    submit = SubmitField("Change password")


class EndSessionForm(FlaskForm):
    session = StringField(validators=[DataRequired(), Length(max=16)])
    submit = SubmitField("Log out")


class EndOtherSessionsForm(ConfirmItsYou):
    """One secret: the password, or a code from the app or the sheet (security/confirm.py)."""

    password = PasswordField(
        "Password",
        validators=[Optional(), Length(max=MAX_LENGTH, message="That is too long for a password.")],
        render_kw={"autocomplete": "current-password"},
    )
    factor = factor_field("Or a code from your authentication app, or a backup code", hint=None)
    submit = SubmitField("Log out of all other sessions")


class AppSetupForm(AppCodeForm):
    password = current_password_field()
    submit = SubmitField("Turn on")


class TurnOffAppForm(ConfirmItsYou):
    submit = SubmitField("Turn off")


class StartAppSetupForm(FlaskForm):
    submit = SubmitField("Set up authentication app")


class SecureWithPasswordForm(ConfirmItsYou):
    submit = SubmitField("Secure my account")


class SecureWithCodeForm(BackupCodeForm):
    """A backup code, and on an account with an app a second one or the app's code: what
    "Forgot password?" asks."""

    factor = factor_field("A second backup code, or a code from your authentication app", None)
    submit = SubmitField("Secure my account")

    validate_factor = ConfirmItsYou.validate_factor

    def codes(self) -> tuple[str, ...]:
        return (self.code.data, self.factor.data) if self.factor.data else (self.code.data,)


class CheckCodeForm(BackupCodeForm):
    """Check a saved code: the password, then a code from the sheet (same shape rules)."""

    password = current_password_field()
    submit = SubmitField("Check")


class DismissForm(FlaskForm):
    submit = SubmitField("Got it, that was me")


class EmailForm(FlaskForm):
    """Send a confirmation link, or confirm with one: the CSRF token is the whole form."""


class ChangeEmailForm(ConfirmItsYou):
    email = StringField(
        "New email address",
        validators=[
            DataRequired("Enter the new email address."),
            Length(max=254, message="That is too long for an email address."),
            Email("Enter an email address like name@example.com.", check_deliverability=False),
        ],
        render_kw={"autocomplete": "email", "type": "email"},
    )
    submit = SubmitField("Change email")

    def validate_email(self, field) -> None:
        field.data = normalise_email(field.data)
