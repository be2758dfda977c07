"""Try the demo, start over, and what every page of a sandbox shows (security/demo.py).

This browser's sandbox is named by a signed cookie that outlives log-out, so the log-in page can
still show its username and password (journey 2 starts logged out)."""

from __future__ import annotations

from flask import (
    after_this_request,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer

from blueprints.browser import enter, leave
from blueprints.context import request_context
from blueprints.demo import bp
from blueprints.metrics import instruments
from extensions import db, limiter
from security.demo import (
    DEMO_PROFILE,
    SandboxLogin,
    SandboxStarted,
    end_sandbox_if_over,
    rules_from_config,
    sandbox_is_over,
    sandbox_login,
    sandbox_of_browser,
    start_sandbox,
)
from security.outcomes import Reason, Refused

DEMO_COOKIE = "sparekey_demo"
EXPIRED = "Your demo account expired and was deleted. Try the demo again for a new one."


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="sparekey demo cookie")


def browser_sandbox() -> tuple[int, str] | None:
    """The id and username of the sandbox this browser last made, from its signed demo cookie.
    Both, because SQLite may give a deleted account's id to the next one made."""
    raw = request.cookies.get(DEMO_COOKIE)
    if not raw:
        return None
    try:
        value = _serializer().loads(raw)
    except BadSignature:
        return None
    if not isinstance(value, list) or len(value) != 2:
        return None
    user_id, username = value
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not isinstance(username, str):
        return None
    return user_id, username


def _remember_sandbox(user_id: int, username: str) -> None:
    value = _serializer().dumps([user_id, username])
    max_age = int(current_app.config["DEMO_TTL_SECONDS"])

    @after_this_request
    def set_demo_cookie(response):
        response.set_cookie(
            DEMO_COOKIE,
            value,
            max_age=max_age,
            httponly=True,
            samesite="Lax",
            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        )
        return response


@bp.route("/accounts/demo/")
def try_demo():
    """What the demo is, with the one button (the welcome and log-in pages have it too)."""
    return render_template("demo/try.html")


@bp.route("/accounts/demo/start/", methods=["POST"])
@limiter.limit(lambda: current_app.config["DEMO_RATE_LIMIT"])
def start():
    """One press: a fresh sandbox for this browser (its previous one deleted), signed in, and
    the tour offered."""
    outcome = start_sandbox(
        request_context(),
        rules_from_config(current_app.config),
        DEMO_PROFILE,
        previous=browser_sandbox(),
    )
    match outcome:
        case SandboxStarted(session=started, username=username):
            instruments.demo_sandbox("made")
            enter(started)
            _remember_sandbox(started.user.id, username)
            flash(
                f"You are in your own demo account, {username}. Nothing you do here touches "
                "anyone else's. Pick a journey to take the tour.",
                "success",
            )
            return redirect(url_for("tour.choose"))
        case Refused(reason=Reason.FULL, message=message):
            instruments.demo_sandbox("full")
            return render_template("demo/full.html", message=message), 503, {"Retry-After": "300"}
        case Refused(message=message):
            flash(message, "error")
            return redirect(url_for("demo.try_demo"))


def end_a_sandbox_past_its_deadline():
    """A request from a sandbox past its deadline deletes it and says so (app.py runs this
    before every page, after the checks that need no account)."""
    if request.endpoint in (None, "static", "demo.start"):
        return None
    user = current_user._get_current_object()
    if not user.is_authenticated or not user.is_sandbox:
        return None
    if not end_sandbox_if_over(request_context(), user):
        return None
    leave()
    flash(EXPIRED, "info")
    return redirect(url_for("profile.home"))


def current_sandbox_login() -> SandboxLogin | None:
    """The login the demo banner shows: the signed-in sandbox's, or (signed out) the one this
    browser's demo cookie names; None otherwise. Looked up once per request."""
    if "sandbox_login" in g:
        return g.sandbox_login
    found = None
    user = current_user._get_current_object()
    if user.is_authenticated:
        if user.is_sandbox:
            found = sandbox_login(db.session, user)
    else:
        sandbox = sandbox_of_browser(db.session, browser_sandbox())
        if sandbox is not None and not sandbox_is_over(sandbox):
            found = sandbox_login(db.session, sandbox)
    g.sandbox_login = found
    return found


def duration_words(seconds: int) -> str:
    """ "2 hours", "1 hour", "30 minutes", "1 minute": how long, as the demo's pages say it."""
    seconds = int(seconds)
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour" + ("s" if hours != 1 else "")
    minutes = max(1, seconds // 60)
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


bp.add_app_template_global(current_sandbox_login, "demo_login")
bp.add_app_template_global(duration_words, "duration_words")
