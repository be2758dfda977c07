"""Settings → Security → Two-Factor Authentication → Backup Codes, password, login activity."""

from __future__ import annotations

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from markupsafe import Markup

from blueprints.auth.secure_link import start_over
from blueprints.browser import leave
from blueprints.context import app_context_of, request_context, site_address
from blueprints.navigation import back_to, no_referrer
from blueprints.settings import bp
from blueprints.settings.forms import (
    AppSetupForm,
    ChangeEmailForm,
    ChangePasswordForm,
    CheckCodeForm,
    ConfirmPasswordForm,
    DismissForm,
    DownloadCodesForm,
    EmailForm,
    EndOtherSessionsForm,
    EndSessionForm,
    SaveSheetForm,
    SecureWithCodeForm,
    SecureWithPasswordForm,
    StartAppSetupForm,
    TurnOffAppForm,
    VoidOldCodesForm,
)
from extensions import db, limiter
from security import events
from security.backup_codes import CODE_STATUS, CODE_STATUS_AND_SHEET, code_status
from security.code_sheets import Sheet
from security.email_address import change_email, send_verification, verify_email
from security.outcomes import (
    AppTurnedOn,
    CodeIsValid,
    CodesSaved,
    Done,
    EmailChanged,
    PasswordChanged,
    Reason,
    Refused,
    Secured,
    SessionsEnded,
    SheetReady,
)
from security.read_ahead import reads_ahead
from security.sessions import sessions_of
from security.settings import (
    SHEET_GONE,
    change_password,
    check_saved_code,
    codes_page,
    confirm_app_setup,
    dismiss_notice,
    get_new_codes,
    log_out_other_sessions,
    log_out_session,
    save_sheet,
    secure_account,
    sheet_for,
    start_app_setup,
    turn_app_off,
    void_old_codes,
)
from security.totp import grouped, provisioning_uri, qr_svg
from security.two_factor import pending_app_secret


@bp.before_request
@login_required
def require_login() -> None:
    """Every settings page needs a signed-in account."""


@bp.route("/")
def index():
    return render_template("settings/index.html")


@bp.route("/security/")
def security():
    recent = events.recent_events(db.session, current_user.id, limit=5)
    return render_template(
        "settings/security.html", events=recent, descriptions=events.DESCRIPTIONS
    )


@bp.route("/security/two-factor/")
@reads_ahead(CODE_STATUS)
def two_factor():
    status = code_status(db.session, current_user.id)
    return render_template("settings/two_factor.html", status=status)


@bp.route("/security/two-factor/backup-codes/")
@reads_ahead(CODE_STATUS_AND_SHEET)
def backup_codes():
    status, sheet = codes_page(_reading(), current_user, current_user.current_session.id)
    return render_template("settings/backup_codes.html", status=status, sheet=sheet)


@bp.route("/security/two-factor/backup-codes/confirm/", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
@no_referrer
def confirm_for_codes():
    """ "Confirm it's you", then a new sheet waits on the server and the browser goes to it (303):
    reloading or going Back never makes another set."""
    form = ConfirmPasswordForm()
    if form.validate_on_submit():
        ctx = request_context()
        session_id = current_user.current_session.id
        match get_new_codes(ctx, current_user, session_id, form.password.data, form.codes()):
            case SheetReady(sessions_ended=ended):
                _flash_ended(ended)
                return redirect(url_for("settings.new_codes"), code=303)
            case Refused(reason=Reason.GONE, message=message):
                return _logged_out(message)
            case Refused() as refused:
                _refusal_on(form, refused)
    return render_template("settings/confirm.html", form=form)


def _refusal_on(form, refused: Refused) -> None:
    """A "Confirm it's you" refusal under the field it is about: a wrong or missing code under
    the code, anything else under the password."""
    if refused.reason in (Reason.WRONG_CODE, Reason.INCOMPLETE) and hasattr(form, "factor"):
        form.factor.errors.append(refused.message)
    else:
        password = getattr(form, "current_password", None) or form.password
        password.errors.append(refused.message)


def _logged_out(message: str):
    """This session was logged out by another request while this one ran."""
    leave()
    flash(message, "info")
    return redirect(url_for("auth.login"))


def _flash_ended(ended: int) -> None:
    """Changing a factor ends every other session; the page says so."""
    if ended:
        plural = "s" if ended != 1 else ""
        flash(f"{ended} other session{plural} logged out.", "info")


def _reading():
    """The Context for a page that only reads: the app's, without this request's client (its
    address, browser and device cookie are for use cases that count or record something)."""
    return app_context_of(current_app)


def _this_sheet() -> Sheet | None:
    return sheet_for(_reading(), current_user, current_user.current_session.id)


def _no_sheet():
    flash(SHEET_GONE, "info")
    return redirect(url_for("settings.backup_codes"))


def _sheet_text(sheet: Sheet, line_end: str) -> str:
    """The sheet as text: settings/codes.txt. The download has Windows line ends so every
    editor shows the lines; Copy has plain ones."""
    text = render_template(
        "settings/codes.txt", username=current_user.username, sheet=sheet, site=site_address()
    )
    return line_end.join(text.splitlines()) + line_end


@bp.route("/security/two-factor/backup-codes/new/")
@no_referrer
def new_codes():
    """The sheet, from the server's copy: the same set and codes on every reload until saved."""
    return _sheet_page()


def _sheet_page(void_form: VoidOldCodesForm | None = None):
    sheet = _this_sheet()
    if sheet is None:
        return _no_sheet()
    return render_template(
        "settings/codes.html",
        sheet=sheet,
        site=site_address(),
        download=DownloadCodesForm(sheet=sheet.public_id),
        void_old=void_form or VoidOldCodesForm(sheet=sheet.public_id),
        sheet_text=_sheet_text(sheet, "\n"),
    )


@bp.route("/security/two-factor/backup-codes/new/saved/", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
@no_referrer
def save_codes():
    """ "I saved my codes": type code #k back from the sheet to put the new set in use."""
    sheet = _this_sheet()
    if sheet is None:
        return _no_sheet()
    form = SaveSheetForm(sheet=sheet.public_id)
    if form.validate_on_submit():
        ctx = request_context()
        session_id = current_user.current_session.id
        match save_sheet(ctx, current_user, session_id, form.sheet.data, form.code.data):
            case CodesSaved(old_voided=True):
                flash("Your new backup codes are in use. Your old codes no longer work.", "success")
                return redirect(url_for("settings.backup_codes"))
            case CodesSaved():
                flash("Your backup codes are saved and ready to use.", "success")
                return redirect(url_for("settings.backup_codes"))
            case Refused(reason=Reason.GONE, message=message):
                flash(message, "info")
                return redirect(url_for("settings.backup_codes"))
            case Refused(message=message):
                form.code.errors.append(message)
    form.code.data = ""
    return render_template("settings/save_codes.html", form=form, sheet=sheet)


@bp.route("/security/two-factor/backup-codes/new/void-old/", methods=["POST"])
@limiter.limit("10/minute", methods=["POST"])
@no_referrer
def void_old():
    """Lost or stolen old sheet: with the password, the old codes stop now and the new ones
    work at once."""
    form = VoidOldCodesForm()
    if not form.validate_on_submit():
        return _sheet_page(form)
    session_id = current_user.current_session.id
    ctx = request_context()
    outcome = void_old_codes(
        ctx, current_user, session_id, form.sheet.data, form.password.data, form.codes()
    )
    match outcome:
        case Done():
            flash("Your old codes no longer work. The codes on this sheet work now.", "success")
            return redirect(url_for("settings.new_codes"))
        case Refused(reason=Reason.GONE, message=message):
            flash(message, "info")
            return redirect(url_for("settings.backup_codes"))
        case Refused() as refused:
            _refusal_on(form, refused)
    return _sheet_page(form)


@bp.route("/security/two-factor/backup-codes/download/", methods=["POST"])
@no_referrer
def download_codes():
    """The sheet as a .txt file, from the server's copy: nothing posted can change it."""
    form = DownloadCodesForm()
    if not form.validate_on_submit():
        abort(400)
    sheet = _this_sheet()
    if sheet is None or sheet.public_id != form.sheet.data:
        return _no_sheet()
    filename = f"sparekey-backup-codes-{current_user.username}-{sheet.public_id}.txt"
    return Response(
        _sheet_text(sheet, "\r\n"),
        mimetype="text/plain",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.route("/security/two-factor/backup-codes/check/", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
@no_referrer
@reads_ahead(CODE_STATUS)
def check_code():
    """Check a saved code: is a code from the sheet valid and unused? It is not spent."""
    status = code_status(db.session, current_user.id)
    if status is None:
        flash("You have no backup codes yet, so there is nothing to check.", "info")
        return redirect(url_for("settings.backup_codes"))
    form = CheckCodeForm()
    found = None
    if form.validate_on_submit():
        ctx = request_context()
        match check_saved_code(ctx, current_user, form.password.data, form.code.data):
            case CodeIsValid() as valid:
                found = valid
            case Refused(reason=Reason.WRONG_PASSWORD, message=message):
                form.password.errors.append(message)
            case Refused(message=message):
                form.code.errors.append(message)
    # Never echo a code back, valid or not: the page shows only its number.
    form.code.data = ""
    return render_template("settings/check_code.html", form=form, status=status, found=found)


@bp.route("/security/password/", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def password():
    form = ChangePasswordForm()
    form.username, form.email = current_user.username, current_user.email or ""
    if form.validate_on_submit():
        outcome = change_password(
            request_context(),
            current_user,
            current_user.current_session,
            form.current_password.data,
            form.password.data,
            form.codes(),
        )
        match outcome:
            case PasswordChanged(sessions_ended=ended):
                others = f" {ended} other session{'s' if ended != 1 else ''} logged out."
                flash(f"Your password is changed.{others if ended else ''}", "success")
                return redirect(url_for("settings.security"))
            case Refused(reason=Reason.GONE, message=message):
                return _logged_out(message)
            case Refused() as refused:
                _refusal_on(form, refused)
    return render_template("settings/password.html", form=form)


@bp.route("/security/sessions/", methods=["GET", "POST"])
def sessions():
    end_one = EndSessionForm(prefix="one")
    end_others = EndOtherSessionsForm(prefix="others")
    if end_one.submit.data and end_one.validate_on_submit():
        match log_out_session(request_context(), current_user, end_one.session.data):
            case Done():
                flash("That session is logged out.", "success")
            case Refused(message=message):
                flash(message, "info")
        return redirect(url_for("settings.sessions"))
    if end_others.submit.data and end_others.validate_on_submit():
        ctx = request_context()
        row = current_user.current_session
        password = end_others.password.data or ""
        match log_out_other_sessions(ctx, current_user, row, password, end_others.codes()):
            case SessionsEnded(count=ended):
                plural = "s" if ended != 1 else ""
                flash(f"Logged out of {ended} other session{plural}.", "success")
                return redirect(url_for("settings.sessions"))
            case Refused(reason=Reason.GONE, message=message):
                return _logged_out(message)
            case Refused() as refused:
                _refusal_on(end_others, refused)
    elif end_one.submit.data:
        abort(400)
    rows = sessions_of(db.session, current_user.id, request_context().timeouts)
    return render_template(
        "settings/sessions.html",
        rows=rows,
        this_session=current_user.current_session.id,
        end_one=end_one,
        end_others=end_others,
    )


@bp.route("/security/events/")
def security_events():
    rows = events.recent_events(db.session, current_user.id, limit=200)
    return render_template("settings/events.html", events=rows, descriptions=events.DESCRIPTIONS)


@bp.route("/security/two-factor/app/")
def app_status():
    return _app_page(TurnOffAppForm(prefix="off"))


def _app_page(turn_off: TurnOffAppForm):
    return render_template(
        "settings/app.html", start=StartAppSetupForm(prefix="start"), turn_off=turn_off
    )


@bp.route("/security/two-factor/app/setup/", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
@no_referrer
def app_setup():
    """POST from the app page starts (or restarts) a set-up; GET shows its QR code and key."""
    ctx = request_context()
    start = StartAppSetupForm(prefix="start")
    if start.submit.data and start.validate_on_submit():
        start_app_setup(ctx, current_user)
        return redirect(url_for("settings.app_setup"))
    if current_user.totp_secret:
        return redirect(url_for("settings.app_status"))
    secret = pending_app_secret(ctx.keys, current_user)
    if secret is None:
        return redirect(url_for("settings.app_status"))
    form = AppSetupForm()
    if form.submit.data and form.validate_on_submit():
        session_id = current_user.current_session.id
        match confirm_app_setup(ctx, current_user, session_id, form.password.data, form.code.data):
            case AppTurnedOn(first_sheet=first_sheet, sessions_ended=ended):
                flash(
                    "Your authentication app is on. You will need it every time you log in.",
                    "success",
                )
                _flash_ended(ended)
                if first_sheet is not None:
                    # The password was confirmed in this request: the first sheet follows at once.
                    return redirect(url_for("settings.new_codes"), code=303)
                return redirect(url_for("settings.two_factor"))
            case Refused(reason=Reason.GONE, message=message):
                return _logged_out(message)
            case Refused(reason=Reason.WRONG_CODE, message=message):
                form.code.errors.append(message)
            case Refused(message=message):
                form.password.errors.append(message)
    # The link a phone's authentication app opens, and the QR code of the same URI for a second
    # device. Safe markup: segno draws the SVG from our own otpauth URI (paths and attributes).
    uri = provisioning_uri(secret, current_user.username)
    qr = Markup(qr_svg(uri))  # noqa: S704  # nosec B704
    return render_template(
        "settings/app_setup.html", form=form, qr=qr, key=grouped(secret), otpauth_uri=uri
    )


@bp.route("/security/two-factor/app/off/", methods=["POST"])
@limiter.limit("10/minute", methods=["POST"])
def app_turn_off():
    form = TurnOffAppForm(prefix="off")
    if not form.validate_on_submit():
        return _app_page(form)
    session_id = current_user.current_session.id
    ctx = request_context()
    match turn_app_off(ctx, current_user, session_id, form.password.data, form.codes()):
        case SessionsEnded(count=ended):
            flash("Your authentication app is off. Your backup codes still work.", "success")
            _flash_ended(ended)
            return redirect(url_for("settings.two_factor"))
        case Refused(reason=Reason.GONE, message=message):
            return _logged_out(message)
        case Refused() as refused:
            _refusal_on(form, refused)
    return _app_page(form)


@bp.route("/security/notice/dismiss/", methods=["POST"])
def dismiss_code_notice():
    if DismissForm().validate_on_submit():
        dismiss_notice(request_context(), current_user, current_user.current_session)
    return redirect(back_to(request.referrer, url_for("profile.home")))


@bp.route("/security/secure/", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def secure_account_page():
    """After "Wasn't you?", with what a sign-in or a recovery asks: lock every door, start over."""
    with_password = SecureWithPasswordForm(prefix="pw")
    with_code = SecureWithCodeForm(prefix="code")
    outcome, form = None, with_password
    if with_password.submit.data and with_password.validate_on_submit():
        outcome = secure_account(
            request_context(), current_user, with_password.password.data, with_password.codes()
        )
    elif with_code.submit.data and with_code.validate_on_submit():
        form = with_code
        outcome = secure_account(request_context(), current_user, "", with_code.codes())
    match outcome:
        case Secured(session=started):
            return start_over(started)
        case Refused() as refused:
            if form is with_code and refused.reason != Reason.INCOMPLETE:
                with_code.code.errors.append(refused.message)
            else:
                _refusal_on(form, refused)
    return render_template("settings/secure.html", with_password=with_password, with_code=with_code)


@bp.route("/security/email/", methods=["GET", "POST"])
@limiter.limit("5/minute", methods=["POST"])
def email():
    """The account's address, a link mailed to confirm it, and changing it."""
    form = EmailForm()
    change = ChangeEmailForm(prefix="change")
    if change.submit.data and change.validate_on_submit():
        ctx = request_context()
        outcome = change_email(
            ctx,
            current_user,
            change.password.data,
            change.email.data,
            change.codes(),
            current_user.current_session.id,
        )
        match outcome:
            case EmailChanged(address=address):
                flash(
                    f"Your email address is now {address}. Confirm it with the link we sent there.",
                    "success",
                )
                return redirect(url_for("settings.email"))
            case Refused(reason=Reason.TAKEN | Reason.DEMO, message=message):
                change.email.errors.append(message)
            case Refused(reason=Reason.GONE, message=message):
                return _logged_out(message)

            case Refused() as refused:
                _refusal_on(change, refused)
        return render_template("settings/email.html", form=form, change=change)
    if not change.submit.data and form.validate_on_submit():
        match send_verification(request_context(), current_user):
            case Done():
                flash(f"We sent a link to {current_user.email}. It works for 24 hours.", "success")
            case Refused(message=message):
                flash(message, "error")
        return redirect(url_for("settings.email"))
    return render_template("settings/email.html", form=form, change=change)


@bp.route("/security/email/verify/<token>", methods=["GET", "POST"])
@no_referrer
def email_verify(token: str):
    """The mailed link: a page with one button, so that following a link changes nothing."""
    form = EmailForm()
    if form.validate_on_submit():
        match verify_email(request_context(), current_user, token[:500]):
            case Done():
                flash("Your email address is confirmed.", "success")
            case Refused(message=message):
                flash(message, "error")
        return redirect(url_for("settings.email"))
    return render_template("settings/email_verify.html", form=form)
