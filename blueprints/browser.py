"""This browser's cookie: signing it in and out, and the half-finished log-in it carries."""

from __future__ import annotations

import contextlib
import hashlib
import time
from functools import lru_cache

from flask import Flask, after_this_request, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import login_user, logout_user
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer

from security.outcomes import Started
from security.trusted_devices import DEVICE_LIFETIME, MAX_TOKENS

PENDING_KEY = "pending_login"
# The device cookie: the tokens of the accounts this browser has signed in to, signed with the
# app's secret key, kept a year and apart from the session (log-out does not forget the device).
DEVICE_COOKIE = "sparekey_device"
# The guided tour's place in the session (blueprints/tour/journeys.py); it survives log-in.
TOUR_KEY = "tour"


class SessionCookie(SecureCookieSessionInterface):
    """Flask's signed cookie, unchanged (the same SHA-1 HMAC, so cookies stay valid), with its
    serializer made once per key instead of on every request (it holds nothing but the keys and
    settings it is made with), and the hash given as hashlib's own constructor: Flask's wrapper
    of it sends every HMAC down Python's slow path.

    A browser sends the same cookie on every page until something in it changes, so a cookie
    whose signature was checked is remembered (`READ_COOKIES` of them per worker, the oldest
    forgotten first) with what it says and when it was signed: the same bytes again are not
    verified and decoded again, only their age is checked, as the serializer would. Only exact,
    already verified bytes match; a new key forgets them all. A cookie holding anything a page
    could change in place (a list or a dict: flashed messages, the tour's place) is read afresh
    each time."""

    def __init__(self) -> None:
        self._made: tuple[tuple, URLSafeTimedSerializer | None, dict] | None = None
        self.digest_method = hashlib.sha1

    def _serializer(self, app: Flask) -> tuple[URLSafeTimedSerializer | None, dict]:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        made = self._made
        if made is None or made[0] != keys:
            made = self._made = (keys, super().get_signing_serializer(app), {})
        return made[1], made[2]

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        return self._serializer(app)[0]

    def open_session(self, app: Flask, request) -> SecureCookieSession | None:
        serializer, read = self._serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        known = read.get(value)
        if known is not None and 0 <= time.time() - known[0] <= max_age:
            return self.session_class(known[1])
        try:
            data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(type(v) in _UNCHANGING for v in data.values()):
            if len(read) >= READ_COOKIES:
                with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                    del read[next(iter(read))]
            read[value] = (signed.timestamp(), data)
        return self.session_class(data)


READ_COOKIES = 4096
# Values no page can change in place: a session holding only these can share one dict.
_UNCHANGING = frozenset({str, int, float, bool, type(None)})


# A form's CSRF token (Flask-WTF's: the session's raw token, signed with a timestamp) is signed
# again at most once a minute per browser; within the minute each page gets the one already
# made, so a token expires at most a minute before its WTF_CSRF_TIME_LIMIT (an hour).
CSRF_RESIGN_SECONDS = 60


@lru_cache(maxsize=4096)
def _signed_csrf_token(secret_key: str | bytes, raw: str, minute: int) -> str:
    return URLSafeTimedSerializer(secret_key, salt="wtf-csrf-token").dumps(raw)


def csrf_token() -> str:
    """The page's CSRF token, as Flask-WTF's `generate_csrf` makes it (which Flask-WTF's own
    check then reads), made once a minute per browser rather than on every page: signing it
    (a key derivation, JSON, base64 and an HMAC) was a tenth of a signed-in page's templates."""
    config = current_app.config
    field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    if field in g:
        return g.get(field)
    raw = session.get(field)
    secret = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    if not isinstance(raw, str) or not secret:
        return generate_csrf()  # a new browser: Flask-WTF makes the raw token
    token = _signed_csrf_token(secret, raw, int(time.time()) // CSRF_RESIGN_SECONDS)
    setattr(g, field, token)
    return token


def clear_session() -> None:
    """Drop everything in the cookie (new contents, new CSRF token) except the guided tour."""
    tour = session.get(TOUR_KEY)
    session.clear()
    if tour is not None:
        session[TOUR_KEY] = tour


def _device_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="sparekey device cookie")


def device_tokens() -> tuple[str, ...]:
    """The tokens of this browser's device cookie; none if it is missing or its signature is
    wrong."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return ()
    try:
        tokens = _device_serializer().loads(raw)
    except BadSignature:
        return ()
    if not isinstance(tokens, list):
        return ()
    return tuple(t for t in tokens if isinstance(t, str))[:MAX_TOKENS]


def remember_device(token: str) -> None:
    """Add a new device token to the cookie, newest first, in this request's response."""
    tokens = [token, *(t for t in device_tokens() if t != token)][:MAX_TOKENS]
    value = _device_serializer().dumps(tokens)

    @after_this_request
    def set_device_cookie(response):
        response.set_cookie(
            DEVICE_COOKIE,
            value,
            max_age=int(DEVICE_LIFETIME.total_seconds()),
            httponly=True,
            samesite="Lax",
            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        )
        return response


def enter(started: Started) -> None:
    """Give the cookie the new server-side session a use case started (already committed), and
    the device cookie its token when the browser just became a trusted device."""
    if started.device_token is not None:
        remember_device(started.device_token)
    clear_session()
    user = started.user
    user.current_session = started.row
    user.session_token = started.token
    login_user(user)
    # Flask-Login's session protection is off (app.py): its address-and-browser digest and its
    # "fresh" flag would only make every request's cookie longer to read.
    session.pop("_id", None)
    session.pop("_fresh", None)


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
