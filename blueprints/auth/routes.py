"""Sign up, log in, log out, "Forgot password?", backup-code recovery, new password."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, session, url_for
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
from blueprints.browser import (
    enter,
    forget_pending,
    hold_pending,
    leave,
    pending_token,
    remember_device,
)
from blueprints.context import request_context
from blueprints.navigation import no_referrer, safe_next
from extensions import limiter
from security.accounts import MAX_IDENTIFIER_LENGTH
from security.backup_codes import LOW_CODES_WARNING
from security.email_address import undo_email_change
from security.outcomes import (
    CodesUsed,
    Done,
    NeedsSecondFactor,
    Reason,
    Recovered,
    Refused,
    SignedIn,
    Unlocked,
)
from security.settings import set_new_password
from security.signing_in import (
    finish_with_app,
    finish_with_backup_code,
    log_in,
    log_out,
    pending_login,
    recover_with_backup_code,
    sign_up,
)
from security.unlock import send_unlock_link, use_unlock_link

RECOVERY_KEY = "recovery_identifier"


def failed_attempts_note(count: int) -> str | None:
    """ "There was 1 failed attempt ..." / "There were 2 failed attempts ...": answered wrong
    secrets only (security/guard.py, Attempt), never a check that did not get its answer (a
    killed request, a database error), and never the person's own mistakes of the last minutes
    in this browser (`others_failures`, docs/decisions.md)."""
    if not count:
        return None
    verb, noun = ("was", "attempt") if count == 1 else ("were", "attempts")
    return (
        f"There {verb} {count} failed {noun} to get into your account since it was last used. "
        "If that was not you, your password and codes are still safe."
    )


def codes_used_notices(used: CodesUsed) -> list[tuple[str, str]]:
    """What a success that spent backup codes says, as (category, sentence): which code, how
    many are left, and at two or fewer (or none) what to do about it."""
    left = used.codes_left
    if len(used.numbers) == 2:
        first, second = used.numbers
        spent = f"You used backup codes #{first} and #{second}"
        last = "your last ones"
    else:
        spent = f"You used backup code #{used.numbers[0]}"
        last = "your last one"
    if left == 0:
        return [
            ("success", f"{spent}, {last}."),
            (
                "warning",
                "You have no backup codes left. Get new codes now in Settings → Security → "
                "Two-Factor Authentication → Backup Codes, so that a lost password cannot "
                "lock you out.",
            ),
        ]
    notices = [("success", f"{spent}. {left} {'code' if left == 1 else 'codes'} left.")]
    if left <= LOW_CODES_WARNING:
        only = f"Only {left} backup {'code' if left == 1 else 'codes'} left."
        notices.append(("warning", f"{only} Get new codes in Settings before you run out."))
    return notices


def _signed_in(outcome: SignedIn | Recovered, default_page: str):
    """Give the cookie its new session and tell the person what happened on the way in."""
    enter(outcome.session)
    if outcome.codes_used is not None:
        for category, sentence in codes_used_notices(outcome.codes_used):
            flash(sentence, category)
    note = failed_attempts_note(outcome.failures_before)
    if note is not None:
        # Smaller than the notice of what just happened (templates/_flashes.html, "note").
        flash(note, "note")
    if isinstance(outcome, Recovered):
        return redirect(url_for("auth.new_password"))
    return redirect(default_page)


@bp.route("/signup/", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
def signup():
    if current_app.config["DEMO_MODE"]:
        # A public demo host: every account is a sandbox ("Try the demo").
        return redirect(url_for("demo.try_demo"))
    if current_user.is_authenticated:
        return redirect(url_for("profile.home"))
    form = SignupForm()
    if form.validate_on_submit():
        outcome = sign_up(
            request_context(),
            form.username.data,
            form.password.data,
            email=form.email.data,
            phone=form.phone.data,
        )
        match outcome:
            case SignedIn(session=started):
                enter(started)
                flash(f"Welcome to Sparekey, {started.user.username}!", "success")
                return redirect(url_for("profile.home"))
            case Refused(message=message):
                form.username.errors.append(message)
    return render_template("auth/signup.html", form=form)


@bp.route("/login/", methods=["GET", "POST"])
@limiter.limit("30/minute", methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("profile.home"))
    form = LoginForm()
    unlock_for = None
    if form.validate_on_submit():
        match log_in(request_context(), form.identifier.data, form.password.data):
            case SignedIn() as outcome:
                next_page = safe_next(request.args.get("next")) or url_for("profile.home")
                return _signed_in(outcome, next_page)
            case NeedsSecondFactor(pending_token=token):
                hold_pending(token)
                return redirect(url_for("auth.two_factor"))
            case Refused(reason=reason, message=message):
                form.form_errors.append(message)
                unlock_for = form.identifier.data if reason == Reason.CLOSED else None
    return render_template("auth/login.html", form=form, unlock_for=unlock_for)


@bp.route("/logout/", methods=["POST"])
@login_required
def logout():
    log_out(request_context(), current_user, current_user.current_session)
    leave()
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
    unlock_for = None
    if form.validate_on_submit():
        match recover_with_backup_code(request_context(), identifier, form.code.data):
            case Recovered() as outcome:
                return _signed_in(outcome, url_for("auth.new_password"))
            case NeedsSecondFactor(pending_token=token):
                hold_pending(token)
                return redirect(url_for("auth.two_factor"))
            case Refused(reason=reason, message=message):
                form.code.errors.append(message)
                unlock_for = identifier if reason == Reason.CLOSED else None
    return render_template(
        "auth/backup_code.html", form=form, identifier=identifier, unlock_for=unlock_for
    )


@bp.route("/unlock/", methods=["POST"])
@limiter.limit("5/minute")
def unlock():
    """Email me an unlock link: the same answer whether or not the name has an account."""
    identifier = (request.form.get("identifier") or "").strip()[:MAX_IDENTIFIER_LENGTH]
    flash(send_unlock_link(request_context(), identifier), "info")
    return redirect(url_for("auth.login"))


@bp.route("/unlock/<token>", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
@no_referrer
def unlock_browser(token: str):
    """The mailed link shows one button, so that merely following it changes nothing."""
    if request.method == "GET":
        return render_template("auth/unlock.html")
    match use_unlock_link(request_context(), token[:500]):
        case Unlocked(username=username, device_token=device_token):
            if device_token is not None:
                remember_device(device_token)
            flash(f"This browser can sign in to {username} again.", "success")
        case Refused(message=message):
            flash(message, "error")
    return redirect(url_for("auth.login"))


def _second_factor_page(form_class, finish, template: str):
    """The two-factor step, by app code or by backup code: same state, limits and outcome."""
    ctx = request_context()
    token = pending_token()
    pending = pending_login(ctx, token)
    if pending is None or token is None:
        forget_pending()
        flash("That took too long, or it started elsewhere. Log in again.", "info")
        return redirect(url_for("auth.login"))
    form = form_class()
    if form.validate_on_submit():
        match finish(ctx, pending, token, form.code.data):
            case SignedIn() | Recovered() as outcome:
                forget_pending()
                return _signed_in(outcome, url_for("profile.home"))
            case Refused(reason=Reason.FIRST_CODE_GONE, message=message):
                forget_pending()
                flash(message, "error")
                return redirect(url_for("auth.trouble"))
            case Refused(message=message):
                form.code.errors.append(message)
    return render_template(template, form=form, pending=pending)


@bp.route("/two-factor/", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
@no_referrer
def two_factor():
    """After the password: the 6-digit code from the authentication app."""
    return _second_factor_page(AppCodeForm, finish_with_app, "auth/two_factor.html")


@bp.route("/two-factor/backup-code/", methods=["GET", "POST"])
@limiter.limit("20/minute", methods=["POST"])
@no_referrer
def two_factor_backup_code():
    """A backup code instead of the app (or, in a recovery, a second backup code)."""
    return _second_factor_page(
        BackupCodeForm, finish_with_backup_code, "auth/two_factor_backup_code.html"
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
        set_new_password(request_context(), current_user, row, form.password.data)
        flash("Your new password is saved. You are logged in.", "success")
        return redirect(url_for("profile.home"))
    return render_template("auth/new_password.html", form=form)


@bp.route("/email/undo/<token>", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
@no_referrer
def undo_email_change_page(token: str):
    """The link mailed to the old address: one button, so following it changes nothing."""
    if request.method == "GET":
        return render_template("auth/undo_email.html")
    match undo_email_change(request_context(), token[:1000]):
        case Done():
            if current_user.is_authenticated:
                leave()
            flash(
                "Your old email address is back, and every session of the account is logged "
                "out. Log in, change your password, and check your backup codes.",
                "success",
            )
        case Refused(message=message):
            flash(message, "error")
    return redirect(url_for("auth.login"))
