"""Home (with the security status card) and profile pages."""

from __future__ import annotations

from flask import Response, abort, render_template
from flask_login import current_user, login_required
from sqlalchemy import select

from blueprints.profile import bp
from extensions import db
from models import User
from security.accounts import ACCOUNT_NAME_PATTERN
from security.backup_codes import CODE_STATUS, code_status
from security.read_ahead import reads_ahead


@bp.route("/")
@reads_ahead(CODE_STATUS)
def home():
    if not current_user.is_authenticated:
        return render_template("profile/welcome.html")
    status = code_status(db.session, current_user.id)
    return render_template("profile/home.html", status=status)


# Crawlers are welcome on the public pages (welcome, log-in, sign-up, the help page); every
# account page answers a crawler with the log-in page anyway. Development's mailbox and the
# metrics are no one's business.
ROBOTS_TXT = """User-agent: *
Allow: /
Disallow: /dev/
Disallow: /metrics
"""


@bp.route("/robots.txt")
def robots_txt():
    return Response(ROBOTS_TXT, mimetype="text/plain")


@bp.route("/<username>/")
@login_required
def profile(username: str):
    if not ACCOUNT_NAME_PATTERN.fullmatch(username):
        abort(404)
    # The account itself, not Flask-Login's proxy of it: the page reads it a dozen times.
    me = current_user._get_current_object()
    if username == me.username:
        user = me
    else:
        user = db.session.scalar(select(User).where(User.username == username.lower()))
        if user is None:
            abort(404)
    return render_template("profile/profile.html", user=user, own=user.id == me.id)
