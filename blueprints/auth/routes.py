"""Sign up, log in, log out, "Forgot password?", backup-code recovery, new password."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required

from blueprints.auth import bp
from blueprints.auth.forms import (
    AppCodeForm,
    BackupCodeForm,
    LoginForm,
    NewPasswordForm,
    SignupForm,
    TroubleForm,
)
from blueprints.web import (
    PENDING_KEY,
    begin_second_factor,
    current_hasher,
    current_limits,
    current_pending,
    drop_pending,
    no_referrer,
    refusal,
    safe_next,
    show_code_notice_elsewhere,
    sign_in,
    sign_out,
)
from extensions import db, limiter
from security import events
from security.accounts import (
    MAX_IDENTIFIER_LENGTH,
    CheckResult,
    DuplicateAccount,
    check_password_login,
    create_user,
    recover_with_backup_code,
    set_new_password,
)
from security.backup_codes import LOW_CODES_WARNING
from security.sessions import clear_password_change_flag, end_other_sessions
from security.two_factor import (
    FIRST_CODE_GONE,
    LOGIN,
    RECOVERY,
    finish_with_app,
    finish_with_backup_code,
)

LOGIN_FAILED_MESSAGE = "The username or password is incorrect. Check them and try again."
APP_CODE_FAILED_MESSAGE = (
    "That code did not work. Check the time on your phone and enter the newest code."
)
CODE_FAILED_MESSAGE = (
    "That code did not work. Check the account name and the code and try again. "
    "Each code works only once."
)
RECOVERY_KEY = "recovery_identifier"


def _failed_attempts_notice(count: int) -> None:
    if count:
        plural = "attempt" if count == 1 else "attempts"
        flash(
            f"There were {count} failed {plural} to get into your account since it was last "
            "used. If that was not you, your password and codes are still safe.",
            "warning",
        )


@bp.route("/signup/", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("profile.home"))
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = create_user(
                db.session,
                current_hasher(),
                form.username.data,
                form.password.data,
                email=form.email.data,
                phone=form.phone.data,
            )
        except DuplicateAccount:
            form.username.errors.append("This username, email or phone is taken. Try another.")
        else:
            sign_in(user)
            events.record_event(db.session, user.id, events.LOGGED_IN)
            db.session.commit()
            flash(f"Welcome to Sparekey, {user.username}!", "success")
            return redirect(url_for("profile.home"))
    return render_template("auth/signup.html", form=form)


@bp.route("/login/", methods=["GET", "POST"])
@limiter.limit("30/minute", methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("profile.home"))
    form = LoginForm()
    if form.validate_on_submit():
        result = check_password_login(
            db.session, current_hasher(), current_limits(), form.identifier.data, form.password.data
        )
        message = refusal(result, LOGIN_FAILED_MESSAGE)
        if message:
            form.form_errors.append(message)
        elif result.needs_second_factor:
            begin_second_factor(result.user.id, LOGIN)
            return redirect(url_for("auth.two_factor"))
        else:
            sign_in(result.user)
            events.record_event(db.session, result.user.id, events.LOGGED_IN)
            db.session.commit()
            _failed_attempts_notice(result.failures_before)
            return redirect(safe_next(request.args.get("next")) or url_for("profile.home"))
    return render_template("auth/login.html", form=form)


@bp.route("/logout/", methods=["POST"])
@login_required
def logout():
    sign_out()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password/reset/", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
@no_referrer
def trouble():
    """The "Trouble logging in?" page, reached from the log-in form's "Forgot password?"."""
    if request.method == "POST":
        # Only the identifier is read: the log-in form also sends its password field here.
        identifier = (request.form.get("identifier") or "").strip()[:MAX_IDENTIFIER_LENGTH]
        session[RECOVERY_KEY] = identifier
        if "use_backup_code" not in request.form:
            return redirect(url_for("auth.trouble"))
        if not identifier:
            flash("Enter your username, email or phone number.", "error")
            return redirect(url_for("auth.trouble"))
        return redirect(url_for("auth.use_backup_code"))
    form = TroubleForm(identifier=session.get(RECOVERY_KEY, ""))
    return render_template("auth/trouble.html", form=form)


@bp.route("/password/reset/backup-code/", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
@no_referrer
def use_backup_code():
    identifier = session.get(RECOVERY_KEY)
    if not identifier:
        flash("Enter your username, email or phone number first.", "info")
        return redirect(url_for("auth.trouble"))
    form = BackupCodeForm()
    if form.validate_on_submit():
        result = recover_with_backup_code(
            db.session, current_hasher(), current_limits(), identifier, form.code.data
        )
        message = refusal(result, CODE_FAILED_MESSAGE)
        if message:
            form.code.errors.append(message)
        elif result.needs_second_factor:
            begin_second_factor(result.user.id, RECOVERY, result.first_code_digest)
            return redirect(url_for("auth.two_factor"))
        else:
            return _finish_recovery(result)
    return render_template("auth/backup_code.html", form=form, identifier=identifier)


def _codes_used_message(result: CheckResult) -> str:
    left = result.redemption.codes_left
    codes = f"{left} {'code' if left == 1 else 'codes'} left."
    if result.first_redemption is not None:
        return (
            f"You used backup codes #{result.first_redemption.number} and "
            f"#{result.redemption.number}. {codes}"
        )
    return f"You used backup code #{result.redemption.number}. {codes}"


def _after_code_use(result: CheckResult) -> None:
    if result.redemption is not None:
        flash(_codes_used_message(result), "success")
        if result.redemption.codes_left <= LOW_CODES_WARNING:
            flash("You are running out of backup codes. Get new ones in Settings.", "warning")
        show_code_notice_elsewhere(result.user, result.code_event)


def _finish_recovery(result: CheckResult):
    """A recovery passed: every session ends, a new one starts, and a new password comes next."""
    user = result.user
    end_other_sessions(db.session, user.id, keep_session_id=None)
    sign_in(user, must_change_password=True)
    events.record_event(db.session, user.id, events.RECOVERED)
    _after_code_use(result)
    db.session.commit()
    _failed_attempts_notice(result.failures_before)
    return redirect(url_for("auth.new_password"))


def _pending_or_restart():
    pending = current_pending()
    if pending is None:
        session.pop(PENDING_KEY, None)
        flash("That took too long, or it started elsewhere. Log in again.", "info")
    return pending


def _finish_second_factor(pending, result: CheckResult, method: str):
    drop_pending()
    if result.problem == FIRST_CODE_GONE:
        flash("Your first backup code was used meanwhile. Start again.", "error")
        return redirect(url_for("auth.trouble"))
    if pending.purpose == RECOVERY:
        return _finish_recovery(result)
    sign_in(result.user)
    events.record_event(db.session, result.user.id, events.LOGGED_IN, f"with {method}")
    _after_code_use(result)
    db.session.commit()
    _failed_attempts_notice(result.failures_before)
    return redirect(url_for("profile.home"))


def _second_factor_page(form_class, finish, wrong_code: str, method: str, template: str):
    """The two-factor step, by app code or by backup code: same state, limits and outcome."""
    pending = _pending_or_restart()
    if pending is None:
        return redirect(url_for("auth.login"))
    form = form_class()
    if form.validate_on_submit():
        result = finish(db.session, current_hasher(), current_limits(), pending, form.code.data)
        message = refusal(result, wrong_code)
        if message is None or result.problem is not None:
            return _finish_second_factor(pending, result, method)
        form.code.errors.append(message)
    return render_template(template, form=form, pending=pending)


@bp.route("/two-factor/", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
@no_referrer
def two_factor():
    """After the password: the 6-digit code from the authentication app."""
    return _second_factor_page(
        AppCodeForm,
        finish_with_app,
        APP_CODE_FAILED_MESSAGE,
        "the authentication app",
        "auth/two_factor.html",
    )


@bp.route("/two-factor/backup-code/", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
@no_referrer
def two_factor_backup_code():
    """A backup code instead of the app (or, in a recovery, a second backup code)."""
    return _second_factor_page(
        BackupCodeForm,
        finish_with_backup_code,
        CODE_FAILED_MESSAGE,
        "a backup code",
        "auth/two_factor_backup_code.html",
    )


@bp.route("/password/new/", methods=["GET", "POST"])
@login_required
@no_referrer
def new_password():
    """After a recovery: the new password comes before anything else."""
    row = current_user.current_session
    if not row.must_change_password:
        return redirect(url_for("settings.password"))
    form = NewPasswordForm()
    form.username, form.email = current_user.username, current_user.email or ""
    if form.validate_on_submit():
        set_new_password(db.session, current_hasher(), current_user, form.password.data)
        end_other_sessions(db.session, current_user.id, keep_session_id=row.id)
        clear_password_change_flag(db.session, row.id)
        db.session.commit()
        flash("Your new password is saved. You are logged in.", "success")
        return redirect(url_for("profile.home"))
    return render_template("auth/new_password.html", form=form)
