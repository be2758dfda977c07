"""Settings → Security → Two-Factor Authentication → Backup Codes, password, login activity."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import (
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from markupsafe import Markup

from blueprints.settings import bp
from blueprints.settings.forms import (
    AppSetupForm,
    ChangePasswordForm,
    CheckCodeForm,
    ConfirmPasswordForm,
    DismissForm,
    DownloadCodesForm,
    EndOtherSessionsForm,
    EndSessionForm,
    SecureWithCodeForm,
    SecureWithPasswordForm,
    StartAppSetupForm,
    TurnOffAppForm,
)
from blueprints.web import (
    current_hasher,
    current_limits,
    no_referrer,
    refusal,
    safe_next,
    sign_in,
)
from extensions import db, limiter
from security import events
from security.accounts import (
    check_saved_code,
    confirm_password,
    set_new_password,
    use_own_backup_code,
)
from security.backup_codes import code_status, format_code, replace_code_set
from security.sessions import end_other_sessions, end_session_by_public_id, sessions_of
from security.totp import grouped, provisioning_uri, qr_svg
from security.two_factor import (
    WRONG_SETUP_CODE,
    confirm_app_setup,
    pending_app_secret,
    secure_account,
    start_app_setup,
    turn_off_app,
)

HOW_TO_USE = [
    "On the log-in page, type your username and press “Forgot password?”.",
    "Choose “Use a backup code”, type one code from this sheet and press Submit.",
    "Each code works once: tick it off here when you use it. Getting new codes voids this sheet.",
]
CHECK_THIS_SHEET = (
    "Check this sheet at Settings → Security → Two-Factor Authentication → Backup Codes."
)
# bandit B105: a message.
WRONG_PASSWORD = "That password is not right. Nothing was changed."  # nosec B105


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
def two_factor():
    status = code_status(db.session, current_user.id)
    return render_template("settings/two_factor.html", status=status)


@bp.route("/security/two-factor/backup-codes/")
def backup_codes():
    status = code_status(db.session, current_user.id)
    return render_template("settings/backup_codes.html", status=status)


@bp.route("/security/two-factor/backup-codes/confirm/", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
@no_referrer
def confirm_for_codes():
    """The "Confirm it's you" page, then the new sheet in the same response: shown once."""
    form = ConfirmPasswordForm()
    if form.validate_on_submit():
        result = confirm_password(
            db.session, current_hasher(), current_limits(), current_user, form.password.data
        )
        message = refusal(result, WRONG_PASSWORD)
        if message:
            form.password.errors.append(message)
        else:
            return _show_new_codes()
    return render_template("settings/confirm.html", form=form)


def _show_new_codes():
    """Replace the account's set and answer with the new sheet: the only time codes are shown."""
    new_set = replace_code_set(db.session, current_hasher(), current_user.id)
    events.record_event(
        db.session, current_user.id, events.CODES_GENERATED, f"set {new_set.public_id}"
    )
    db.session.commit()
    download = DownloadCodesForm(
        formdata=None, set_id=new_set.public_id, codes=" ".join(new_set.codes)
    )
    response = make_response(
        render_template(
            "settings/codes.html",
            code_set=new_set,
            how_to_use=HOW_TO_USE,
            check_this_sheet=CHECK_THIS_SHEET,
            download=download,
        )
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/security/two-factor/backup-codes/download/", methods=["POST"])
@no_referrer
def download_codes():
    """Turn the sheet the browser just showed into a .txt file, without storing the codes."""
    form = DownloadCodesForm()
    status = code_status(db.session, current_user.id)
    if not form.validate_on_submit() or status is None or form.set_id.data != status.public_id:
        flash("Those codes are no longer current. Get new backup codes to download them.", "error")
        return redirect(url_for("settings.backup_codes"))
    codes = form.codes.data.split()
    text = codes_text(current_user.username, status.public_id, status.created_at, codes)
    filename = f"sparekey-backup-codes-{current_user.username}-{status.public_id}.txt"
    return Response(
        text,
        mimetype="text/plain",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def codes_text(username: str, set_id: str, created_at: datetime, codes: list[str]) -> str:
    lines = [
        "Sparekey backup codes",
        "",
        f"Account: {username}",
        f"Set: {set_id}",
        f"Created: {created_at.strftime('%-d %b %Y, %H:%M UTC')}",
        "",
    ]
    lines += [f"{number:>2}. {format_code(code)}" for number, code in enumerate(codes, start=1)]
    lines += ["", "How to use a code:"]
    lines += [f"{number}. {step}" for number, step in enumerate(HOW_TO_USE, start=1)]
    lines += ["", CHECK_THIS_SHEET]
    return "\r\n".join(lines) + "\r\n"


@bp.route("/security/two-factor/backup-codes/check/", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
@no_referrer
def check_code():
    """Check a saved code: is a code from the sheet valid and unused? It is not spent."""
    status = code_status(db.session, current_user.id)
    if status is None:
        flash("You have no backup codes yet, so there is nothing to check.", "info")
        return redirect(url_for("settings.backup_codes"))
    form = CheckCodeForm()
    valid_number = None
    if form.validate_on_submit():
        result = check_saved_code(
            db.session,
            current_hasher(),
            current_limits(),
            current_user,
            form.password.data,
            form.code.data,
        )
        if result.throttled is not None:
            form.code.errors.append(result.throttled.message)
        elif result.wrong_password:
            form.password.errors.append("That password is not right. No code was checked.")
        elif not result.ok:
            form.code.errors.append(
                f"That is not an unused code of your current set ({status.public_id}): it may "
                "be used already, mistyped, or from an older sheet."
            )
        else:
            valid_number = result.number
    # Never echo a code back, valid or not: the page shows only its number.
    form.code.data = ""
    return render_template(
        "settings/check_code.html", form=form, status=status, valid_number=valid_number
    )


@bp.route("/security/password/", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def password():
    form = ChangePasswordForm()
    form.username, form.email = current_user.username, current_user.email or ""
    if form.validate_on_submit():
        result = confirm_password(
            db.session, current_hasher(), current_limits(), current_user, form.current_password.data
        )
        message = refusal(result, WRONG_PASSWORD)
        if message:
            form.current_password.errors.append(message)
        else:
            set_new_password(db.session, current_hasher(), current_user, form.password.data)
            ended = end_other_sessions(
                db.session, current_user.id, keep_session_id=current_user.current_session.id
            )
            db.session.commit()
            others = (
                f" {ended} other session{'s' if ended != 1 else ''} logged out." if ended else ""
            )
            flash(f"Your password is changed.{others}", "success")
            return redirect(url_for("settings.security"))
    return render_template("settings/password.html", form=form)


@bp.route("/security/sessions/", methods=["GET", "POST"])
def sessions():
    end_one = EndSessionForm(prefix="one")
    end_others = EndOtherSessionsForm(prefix="others")
    if end_one.submit.data and end_one.validate_on_submit():
        if end_session_by_public_id(db.session, current_user.id, end_one.session.data):
            events.record_event(db.session, current_user.id, events.LOGGED_OUT, "another session")
            db.session.commit()
            flash("That session is logged out.", "success")
        else:
            flash("That session had already ended.", "info")
        return redirect(url_for("settings.sessions"))
    if end_others.submit.data and end_others.validate_on_submit():
        ended = end_other_sessions(
            db.session, current_user.id, keep_session_id=current_user.current_session.id
        )
        events.record_event(
            db.session, current_user.id, events.LOGGED_OUT, f"{ended} other sessions"
        )
        db.session.commit()
        flash(f"Logged out of {ended} other session{'s' if ended != 1 else ''}.", "success")
        return redirect(url_for("settings.sessions"))
    if end_one.submit.data or end_others.submit.data:
        abort(400)
    rows = sessions_of(db.session, current_user.id, current_app.extensions["sparekey_timeouts"])
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
    start = StartAppSetupForm(prefix="start")
    if start.submit.data and start.validate_on_submit():
        start_app_setup(db.session, current_hasher(), current_user)
        return redirect(url_for("settings.app_setup"))
    if current_user.totp_secret:
        return redirect(url_for("settings.app_status"))
    secret = pending_app_secret(current_hasher(), current_user)
    if secret is None:
        return redirect(url_for("settings.app_status"))
    form = AppSetupForm()
    if form.submit.data and form.validate_on_submit():
        result = confirm_app_setup(
            db.session,
            current_hasher(),
            current_limits(),
            current_user,
            form.password.data,
            form.code.data,
        )
        if result.problem == WRONG_SETUP_CODE:
            form.code.errors.append(
                "That code did not match. Check that the app shows Sparekey and the time on "
                "your phone is right, then type the newest code."
            )
        elif message := refusal(result, WRONG_PASSWORD):
            form.password.errors.append(message)
        else:
            db.session.commit()
            flash(
                "Your authentication app is on. You will need it every time you log in.", "success"
            )
            if code_status(db.session, current_user.id) is None:
                # The password was confirmed in this request: the first sheet follows at once.
                return _show_new_codes()
            return redirect(url_for("settings.two_factor"))
    # Safe markup: segno draws the SVG from our own otpauth URI (paths and attributes only).
    qr = Markup(qr_svg(provisioning_uri(secret, current_user.username)))  # noqa: S704  # nosec B704
    return render_template("settings/app_setup.html", form=form, qr=qr, key=grouped(secret))


@bp.route("/security/two-factor/app/off/", methods=["POST"])
@limiter.limit("10/minute", methods=["POST"])
def app_turn_off():
    form = TurnOffAppForm(prefix="off")
    if not form.validate_on_submit():
        return _app_page(form)
    result = confirm_password(
        db.session, current_hasher(), current_limits(), current_user, form.password.data
    )
    message = refusal(result, WRONG_PASSWORD)
    if message:
        form.password.errors.append(message)
        return _app_page(form)
    turn_off_app(db.session, current_user)
    db.session.commit()
    flash("Your authentication app is off. Your backup codes still work.", "success")
    return redirect(url_for("settings.two_factor"))


@bp.route("/security/notice/dismiss/", methods=["POST"])
def dismiss_code_notice():
    if DismissForm().validate_on_submit():
        current_user.clear_code_notice()
        db.session.commit()
    return redirect(
        request.referrer if safe_next(_path_of(request.referrer)) else url_for("profile.home")
    )


def _path_of(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path


@bp.route("/security/secure/", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
def secure_account_page():
    """After "Wasn't you?" and the password or a backup code: lock every door, start over."""
    with_password = SecureWithPasswordForm(prefix="pw")
    with_code = SecureWithCodeForm(prefix="code")
    passed = False
    if with_password.submit.data and with_password.validate_on_submit():
        result = confirm_password(
            db.session,
            current_hasher(),
            current_limits(),
            current_user,
            with_password.password.data,
        )
        message = refusal(result, WRONG_PASSWORD)
        if message:
            with_password.password.errors.append(message)
        passed = message is None
    elif with_code.submit.data and with_code.validate_on_submit():
        result = use_own_backup_code(
            db.session, current_hasher(), current_limits(), current_user, with_code.code.data
        )
        message = refusal(result, "That code did not work. Each code works only once.")
        if message:
            with_code.code.errors.append(message)
        passed = message is None
    if passed:
        secure_account(db.session, current_user)
        sign_in(current_user, must_change_password=True)
        db.session.commit()
        flash(
            "Every session is logged out and your backup codes no longer work. Choose a new "
            "password, then get new backup codes.",
            "success",
        )
        return redirect(url_for("auth.new_password"))
    return render_template("settings/secure.html", with_password=with_password, with_code=with_code)
