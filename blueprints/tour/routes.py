"""Start, leave and follow the guided tour; the help page."""

from __future__ import annotations

from pathlib import Path

from flask import abort, redirect, render_template, request, send_from_directory, url_for
from flask_login import current_user
from sqlalchemy import select

from blueprints.browser import leave
from blueprints.context import request_context
from blueprints.navigation import safe_next
from blueprints.tour import bp, journeys
from extensions import db
from models import User
from security.signing_in import log_out


@bp.route("/tour/")
def choose():
    """The "Show me how" page: pick one of the two journeys."""
    demo = db.session.scalar(select(User.username).where(User.username == "demo"))
    return render_template("tour/choose.html", journeys=journeys.JOURNEYS, demo=demo)


@bp.route("/tour/start/", methods=["POST"])
def start():
    journey = journeys.JOURNEYS.get(request.form.get("journey", ""))
    if journey is None:
        return redirect(url_for("tour.choose"))
    if not journey.needs_login and current_user.is_authenticated:
        # "Use a backup code" starts where a locked-out person stands: logged out.
        log_out(request_context(), current_user, current_user.current_session, "to take the tour")
        leave()
    journeys.start(journey.key)
    if journey.needs_login and current_user.is_authenticated:
        return redirect(url_for("profile.home"))
    return redirect(url_for("auth.login"))


@bp.route("/tour/exit/", methods=["POST"])
def exit_tour():
    journeys.stop()
    return redirect(safe_next(request.form.get("next")) or url_for("profile.home"))


@bp.route("/help/backup-codes/")
def help_page():
    return render_template("tour/help.html")


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@bp.route("/help/screenshots/<name>")
def screenshot(name: str):
    """The help page's pictures: the README's screenshots, kept once in docs/screenshots/."""
    if not name.endswith(".png"):
        abort(404)
    return send_from_directory(SCREENSHOTS, name, mimetype="image/png", max_age=3600)
