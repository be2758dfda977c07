"""This browser's cookie: signing it in and out, and the half-finished log-in it carries."""

from __future__ import annotations

from flask import session
from flask_login import login_user, logout_user

from security.outcomes import Started

PENDING_KEY = "pending_login"
# The guided tour's place in the session (blueprints/tour/journeys.py); it survives log-in.
TOUR_KEY = "tour"


def clear_session() -> None:
    """Drop everything in the cookie (new contents, new CSRF token) except the guided tour."""
    tour = session.get(TOUR_KEY)
    session.clear()
    if tour is not None:
        session[TOUR_KEY] = tour


def enter(started: Started) -> None:
    """Give the cookie the new server-side session a use case started (already committed)."""
    clear_session()
    user = started.user
    user.current_session = started.row
    user.session_token = started.token
    login_user(user)


def leave() -> None:
    """Empty the cookie after the use case ended its server-side session."""
    logout_user()
    clear_session()


def hold_pending(token: str) -> None:
    """Half-logged-in: the state lives on the server; the cookie holds only its token."""
    clear_session()
    session[PENDING_KEY] = token


def pending_token() -> str | None:
    return session.get(PENDING_KEY)


def forget_pending() -> str | None:
    """Take the half-finished log-in's token out of the cookie; returns it."""
    return session.pop(PENDING_KEY, None)
