"""Start, leave and follow the guided tour; the help page."""

from __future__ import annotations

from pathlib import Path

from flask import abort, redirect, render_template, request, send_from_directory, url_for
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from blueprints.tour import bp, journeys
from blueprints.web import clear_session, safe_next
from extensions import db
from models import User
from security import events
from security.sessions import end_session


@bp.route("/tour/")
def choose():
    """The "Show me how" page: pick one of the two journeys."""
    demo = db.session.scalar(select(User.username).where(User.username == "demo"))
    return render_template("tour/choose.html", journeys=journeys.JOURNEYS, demo=demo)


@bp.route("/tour/start/", methods=["POST"])
def start():
    FlaskForm().validate_on_submit()  # the CSRF check already ran; nothing else to read
    journey = journeys.JOURNEYS.get(request.form.get("journey", ""))
    if journey is None:
        return redirect(url_for("tour.choose"))
    if not journey.needs_login and current_user.is_authenticated:
        # "Use a backup code" starts where a locked-out person stands: logged out.
        end_session(db.session, current_user.current_session.id)
        events.record_event(db.session, current_user.id, events.LOGGED_OUT, "to take the tour")
        db.session.commit()
        logout_user()
        clear_session()
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
