"""The "Wasn't you? Secure your account" link of a notice mail: it works without a session."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for

from blueprints.auth import bp
from blueprints.browser import enter
from blueprints.context import request_context
from blueprints.navigation import no_referrer
from extensions import limiter
from security.outcomes import Refused, Secured, Started
from security.settings import secure_with_link


def start_over(started: Started) -> Response:
    """After securing the account (from a session or from the mailed link): this browser's new
    session, which must choose a new password before anything else."""
    enter(started)
    flash(
        "Every session is logged out and your backup codes no longer work. Choose a new "
        "password, then get new backup codes.",
        "success",
    )
    return redirect(url_for("auth.new_password"))


@bp.route("/secure/<token>", methods=["GET", "POST"])
@limiter.limit("10/minute", methods=["POST"])
@no_referrer
def secure_from_mail(token: str):
    """One button, so that merely following the link (or a mail scanner's fetch) changes
    nothing."""
    if request.method == "GET":
        return render_template("auth/secure_link.html")
    match secure_with_link(request_context(), token[:1000]):
        case Secured(session=started):
            return start_over(started)
        case Refused(message=message):
            flash(message, "error")
    return redirect(url_for("auth.login"))
