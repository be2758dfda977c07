"""Helpers shared by the views: signing in, safe redirects, the configured hasher and limits."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import current_app, make_response, session
from flask_login import current_user, login_user, logout_user

from extensions import db
from models import PendingLogin, SecurityEvent, User
from security import events
from security.accounts import CheckResult
from security.attempts import Limits
from security.client import client_ip, client_user_agent
from security.keys import current_hasher
from security.sessions import (
    end_pending_login,
    end_session,
    load_pending_login,
    start_pending_login,
    start_session,
)

__all__ = [
    "PENDING_KEY",
    "begin_second_factor",
    "clear_session",
    "current_hasher",
    "current_limits",
    "current_pending",
    "drop_pending",
    "no_referrer",
    "refusal",
    "safe_next",
    "show_code_notice_elsewhere",
    "sign_in",
    "sign_out",
]


def current_limits() -> Limits:
    return current_app.extensions["sparekey_limits"]


def clear_session() -> None:
    """Drop everything in the cookie (new contents, new CSRF token) except the guided tour."""
    tour = session.get(TOUR_KEY)
    session.clear()
    if tour is not None:
        session[TOUR_KEY] = tour


def sign_in(user: User, must_change_password: bool = False) -> None:
    """Start a fresh server-side session; the old cookie contents and CSRF token are dropped.

    The caller commits.
    """
    clear_session()
    row, token = start_session(
        db.session, user.id, client_ip(), client_user_agent(), must_change_password
    )
    db.session.flush()
    user.current_session = row
    user.session_token = token
    login_user(user)


def sign_out(detail: str = "") -> None:
    """End this browser's server-side session (a copy of its cookie dies with it), record it,
    and empty the cookie. Commits."""
    end_session(db.session, current_user.current_session.id)
    events.record_event(db.session, current_user.id, events.LOGGED_OUT, detail)
    db.session.commit()
    logout_user()
    clear_session()


PENDING_KEY = "pending_login"
# The guided tour's place in the session (blueprints/tour/journeys.py); it survives log-in.
TOUR_KEY = "tour"


def begin_second_factor(user_id: int, purpose: str, first_code_digest: str | None = None) -> None:
    """Half-logged-in: the state lives on the server; the cookie holds only its token."""
    token = start_pending_login(db.session, user_id, purpose, first_code_digest)
    clear_session()
    session[PENDING_KEY] = token


def current_pending() -> PendingLogin | None:
    seconds = int(current_app.config["PENDING_LOGIN_SECONDS"])
    return load_pending_login(db.session, session.get(PENDING_KEY), seconds)


def drop_pending() -> None:
    """Wipe the half-finished log-in (an out-of-order request, a success, or an expiry)."""
    token = session.pop(PENDING_KEY, None)
    if token:
        end_pending_login(db.session, token)
        db.session.commit()


def show_code_notice_elsewhere(user: User, event: SecurityEvent) -> None:
    """After a backup code is used, every other session shows who used it until dismissed."""
    db.session.flush()  # the event's id
    user.code_notice_event_id = event.id
    user.code_notice_session_id = user.current_session.id


def refusal(result: CheckResult, wrong_secret: str) -> str | None:
    """The message for a refused check: throttled, or the wrong secret; None on success."""
    if result.throttled is not None:
        return result.throttled.message
    if not result.ok:
        return wrong_secret
    return None


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None."""
    if not target or len(target) > 500:
        return None
    if any(ord(ch) < 33 or ch == "\\" for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def no_referrer(view):
    """Pages that show codes or recovery forms send no Referer anywhere."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        response = make_response(view(*args, **kwargs))
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return wrapped
