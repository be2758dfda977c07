"""Settings → Security → Two-Factor Authentication → Backup Codes, password, login activity."""

from __future__ import annotations

from datetime import datetime

from flask import Response, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from blueprints.settings import bp
from blueprints.settings.forms import (
    ChangePasswordForm,
    ConfirmPasswordForm,
    DownloadCodesForm,
    EndOtherSessionsForm,
    EndSessionForm,
)
from blueprints.web import current_hasher, current_limits, no_referrer, refusal
from extensions import db, limiter
from security import events
from security.accounts import confirm_password, set_new_password
from security.backup_codes import code_status, format_code, replace_code_set
from security.sessions import end_other_sessions, end_session_by_public_id, sessions_of

HOW_TO_USE = [
    "On the log-in page, type your username and press “Forgot password?”.",
    "Choose “Use a backup code”, type one code from this sheet and press Submit.",
    "Each code works once: tick it off here when you use it. Getting new codes voids this sheet.",
]
WRONG_PASSWORD = "That password is not right. Nothing was changed."


@bp.before_request
@login_required
def require_login() -> None:
    """Every settings page needs a signed-in account."""


@bp.route("/")
def index():
    return render_template("settings/index.html")


@bp.route("/security/")
def security():
    recent = events.recent_events(db.session, current_user.id, limit=20)
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
    """ "Confirm it's you", then the new sheet in the same response: the codes are shown once."""
    form = ConfirmPasswordForm()
    if form.validate_on_submit():
        result = confirm_password(
            db.session, current_hasher(), current_limits(), current_user, form.password.data
        )
        message = refusal(result, WRONG_PASSWORD)
        if message:
            form.password.errors.append(message)
        else:
            new_set = replace_code_set(db.session, current_hasher(), current_user.id)
            events.record_event(
                db.session, current_user.id, events.CODES_GENERATED, f"set {new_set.public_id}"
            )
            db.session.commit()
            download = DownloadCodesForm(
                formdata=None, set_id=new_set.public_id, codes=" ".join(new_set.codes)
            )
            return render_template(
                "settings/codes.html", code_set=new_set, how_to_use=HOW_TO_USE, download=download
            )
    return render_template("settings/confirm.html", form=form)


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
    return "\r\n".join(lines) + "\r\n"


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
    rows = sessions_of(db.session, current_user.id)
    return render_template(
        "settings/sessions.html",
        rows=rows,
        this_session=current_user.current_session.id,
        end_one=end_one,
        end_others=end_others,
    )
