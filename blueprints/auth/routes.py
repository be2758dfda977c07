"""Sign up, log in, log out, "Forgot password?", backup-code recovery, new password."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, logout_user

from blueprints.auth import bp
from blueprints.auth.forms import (
    BackupCodeForm,
    LoginForm,
    NewPasswordForm,
    SignupForm,
    TroubleForm,
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
    MAX_IDENTIFIER_LENGTH,
    DuplicateAccount,
    check_password_login,
    create_user,
    recover_with_backup_code,
    set_new_password,
)
from security.sessions import clear_password_change_flag, end_other_sessions, end_session

LOGIN_FAILED_MESSAGE = "The username or password is incorrect. Check them and try again."
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
    user_id = current_user.id
    end_session(db.session, current_user.current_session.id)
    events.record_event(db.session, user_id, events.LOGGED_OUT)
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password/reset/", methods=["GET", "POST"])
@no_referrer
def trouble():
    """ "Trouble logging in?": reached from the log-in form's "Forgot password?" with the name."""
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
        else:
            user, redemption = result.user, result.redemption
            end_other_sessions(db.session, user.id, keep_session_id=None)
            sign_in(user, must_change_password=True)
            db.session.commit()
            left = redemption.codes_left
            flash(
                f"You used backup code #{redemption.number}. "
                f"{left} {'code' if left == 1 else 'codes'} left.",
                "success",
            )
            if left <= 2:
                flash("You are running out of backup codes. Get new ones in Settings.", "warning")
            _failed_attempts_notice(result.failures_before)
            return redirect(url_for("auth.new_password"))
    return render_template("auth/backup_code.html", form=form, identifier=identifier)


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
