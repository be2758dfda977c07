"""A stolen session is not a stolen account: attacks with a copied cookie against a running
server (docs/decisions.md, "What each action needs")."""

from __future__ import annotations

import html
import http.client
import re
from dataclasses import replace
from datetime import UTC, timedelta

import pyotp
from sqlalchemy import select

from blueprints.context import app_context_of
from extensions import db
from models import BackupCode, User, UserSession
from security.notices import Outbox, secure_link
from tests.helpers import PASSWORD, T0, give_codes, make_user, snapshot
from tools.live import Browser, csrf_from, running

SETTINGS = "/settings/"
SECURE = "/settings/security/secure/"
PASSWORD_PAGE = "/settings/security/password/"
APP = "/settings/security/two-factor/app/"
APP_OFF = APP + "off/"
SETUP = APP + "setup/"
CONFIRM = "/settings/security/two-factor/backup-codes/confirm/"
EMAIL = "/settings/security/email/"
SESSIONS = "/settings/security/sessions/"
DISMISS = "/settings/security/notice/dismiss/"
TWO_FACTOR = "/accounts/two-factor/"
TWO_FACTOR_CODE = "/accounts/two-factor/backup-code/"
# A refused attempt may count on the counter and write its failure event; nothing else.
COUNTED = ("attempt_counters", "security_events")


def app_code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at((T0 + timedelta(seconds=30 * steps)).replace(tzinfo=UTC))


def sign_in(browser: Browser, secret: str | None = None, steps: int = 0, code: str = "") -> None:
    """Password, then (with an app) the app's code at `steps`, or the backup code `code`."""
    assert browser.log_in("alice", PASSWORD) == 302
    if secret is None and not code:
        return
    page = TWO_FACTOR_CODE if code else TWO_FACTOR
    token = browser.token(page)
    status, location, _ = browser.post(
        page, {"csrf_token": token, "code": code or app_code(secret or "", steps)}
    )
    assert (status, location) == (302, "/"), (status, location)


def post_form(browser: Browser, page: str, data: dict, action: str | None = None, prefix=""):
    """Post `data` with the session's CSRF token (read from a page that always has a form), as
    the form on `page` would."""
    token = browser.token(PASSWORD_PAGE)
    return browser.post(action or page, {f"{prefix}csrf_token": token, **data})


def signed_in(browser: Browser) -> bool:
    return browser.get(SETTINGS)[0] == 200


def text(body: str) -> str:
    return html.unescape(body)


def test_a_copied_cookie_and_one_backup_code_cannot_take_over_an_app_account(
    app, user, user_codes, user_with_app, frozen_clock
):
    """Checklist 60: the takeover the review found. A live session plus one backup code used
    to reach "Secure your account", then a new password, the app off and new codes. Now every
    step that removes a factor or could lock the owner out asks what a sign-in asks."""
    with running(app) as base:
        owner = Browser(base)
        sign_in(owner, user_with_app)
        thief = owner.stolen_copy()
        assert signed_in(thief)
        before = snapshot(app, ignore=COUNTED)
        one_code = user_codes[0]
        new_password = {"password": "N3w passw0rd!", "confirm": "N3w passw0rd!"}
        new_email = {"change-email": "thief@example.com", "change-submit": "1"}
        attempts = [
            (SECURE, {"code-code": one_code, "code-submit": "1"}, None, "code-"),
            (SECURE, {"pw-factor": one_code, "pw-submit": "1"}, None, "pw-"),
            (PASSWORD_PAGE, {"factor": one_code, **new_password}, None, ""),
            (APP, {"off-factor": one_code}, APP_OFF, "off-"),
            (CONFIRM, {"factor": one_code}, None, ""),
            (EMAIL, {"change-factor": one_code, **new_email}, None, "change-"),
            (SESSIONS, {"others-submit": "1"}, None, "others-"),
        ]
        for page, data, action, prefix in attempts:
            status, _, body = post_form(thief, page, data, action, prefix)
            assert status == 200, (page, status)
            assert re.search(r"one backup code is not enough|Enter your password", text(body)), page
        # A guessed second code: refused, and the right first code is not spent.
        form = {"code-code": one_code, "code-factor": "000000", "code-submit": "1"}
        status, _, body = post_form(thief, SECURE, form, prefix="code-")
        assert status == 200 and "That code did not work" in text(body)
        assert snapshot(app, ignore=COUNTED) == before
        assert signed_in(owner) and signed_in(thief)


def test_an_intruders_session_cannot_hide_the_notice_or_end_the_owners_sessions(
    app, user, user_codes, user_with_app, frozen_clock
):
    """The intruder knows the password and one backup code and signs in with them; the notice
    stays on the owner's session whatever the intruder's session does."""
    with running(app) as base:
        owner, intruder = Browser(base), Browser(base)
        sign_in(owner, user_with_app)
        sign_in(intruder, code=user_codes[4])
        assert "A backup code was used" not in intruder.get("/")[2]
        assert "A backup code was used" in owner.get("/")[2]
        # Dismissing in the intruder's session hides nothing elsewhere.
        assert post_form(intruder, "/", {}, DISMISS)[0] == 302
        assert "A backup code was used" in owner.get("/")[2]
        # Ending the owner's sessions needs a secret.
        status, _, body = post_form(intruder, SESSIONS, {"others-submit": "1"}, prefix="others-")
        assert status == 200 and "Enter your password, a code from your authentication app" in (
            text(body)
        )
        assert signed_in(owner)
        with app.app_context():
            assert len(db.session.scalars(select(UserSession)).all()) == 2
        # The owner's "Got it, that was me" hides it in the owner's session only.
        assert post_form(owner, "/", {}, DISMISS)[0] == 302
        assert "A backup code was used" not in owner.get("/")[2]
        late = Browser(base)
        sign_in(late, user_with_app, steps=1)
        assert "A backup code was used" in late.get("/")[2]
        # And the events list keeps it.
        assert "Backup code used" in owner.get("/settings/security/events/")[2]


def test_app_on_app_off_and_new_codes_end_every_other_session(app, user, frozen_clock):
    """Checklist 61: a copy of the laptop's cookie dies whenever the phone turns the app on or
    off or gets new codes; the phone's own session stays, and its page says how many ended."""
    give_codes(app, user)
    with running(app) as base:
        laptop, phone = Browser(base), Browser(base)
        sign_in(laptop)
        sign_in(phone)
        copy = laptop.stolen_copy()
        post_form(phone, APP, {"start-submit": "1"}, SETUP, prefix="start-")
        key = re.search(r'class="setup-key"[^>]*>([A-Z2-7 ]+)<', phone.get(SETUP)[2])
        secret = key.group(1).replace(" ", "")
        form = {"code": app_code(secret), "password": PASSWORD, "submit": "1"}
        assert post_form(phone, SETUP, form)[0] in (302, 303)
        assert "1 other session logged out" in phone.get("/settings/security/two-factor/")[2]
        assert not signed_in(copy) and not signed_in(laptop) and signed_in(phone)

        sign_in(laptop, secret, steps=1)
        copy = laptop.stolen_copy()
        form = {"off-password": PASSWORD, "off-factor": app_code(secret, 2), "off-submit": "1"}
        frozen_clock(60)
        assert post_form(phone, APP, form, APP_OFF, prefix="off-")[0] == 302
        assert not signed_in(copy) and signed_in(phone)

        sign_in(laptop)
        copy = laptop.stolen_copy()
        status, location, _ = post_form(phone, CONFIRM, {"password": PASSWORD})
        assert (status, location) == (303, "/settings/security/two-factor/backup-codes/new/")
        assert "1 other session logged out" in phone.get(location)[2]
        assert not signed_in(copy) and signed_in(phone)


def test_the_dismiss_button_never_follows_a_bad_referer(app, user, user_codes, frozen_clock):
    with running(app) as base:
        owner = Browser(base)
        sign_in(owner)
        for referer, expected in [
            ("javascript:/alert(1)", "/"),
            ("http://[::1", "/"),
            ("http://evil.example/settings/", "/"),
            ("//evil.example/", "/"),
            (f"{base}/settings/security/?tab=1", "/settings/security/?tab=1"),
        ]:
            owner.headers["Referer"] = referer
            status, location, _ = post_form(owner, "/", {}, DISMISS)
            assert (status, location) == (302, expected), referer


def test_the_mailed_secure_link_locks_every_door_once(app_factory, frozen_clock):
    """ "Wasn't you? Secure your account" from a notice mail: every session ends, every code is
    void, and the browser that followed the link chooses a new password; the link works once."""
    app = app_factory("secure-link.db")
    user_id = make_user(app, email="alice@example.com")
    give_codes(app, user_id)
    with app.app_context():
        account = db.session.get(User, user_id)
        account.email_verified_at = T0
        db.session.commit()
    with running(app) as base:
        owner = Browser(base)
        sign_in(owner)
        with app.app_context():
            ctx = replace(app_context_of(app), outbox=Outbox(site=base))
            link = secure_link(ctx, db.session.get(User, user_id))
        path = link[len(base) :]
        stranger = Browser(base)
        assert stranger.get(path)[0] == 200
        assert signed_in(owner)
        status, location, _ = stranger.post(path, {"csrf_token": csrf_from(stranger.get(path)[2])})
        assert (status, location) == (302, "/accounts/password/new/")
        assert not signed_in(owner)
        with app.app_context():
            assert db.session.scalars(select(BackupCode)).all() == []
        again = Browser(base)
        status, location, _ = again.post(path, {"csrf_token": csrf_from(again.get(path)[2])})
        assert (status, location) == (302, "/accounts/login/")
        assert "already used" in again.get("/accounts/login/")[2]


def test_a_running_server_answers_another_host_with_400_never_a_redirect(app_factory):
    """`Host: evil.example` against a real server with TRUSTED_HOSTS: a 400 for the page that
    would redirect (the missing trailing slash) and for the log-in page; the trusted host is
    served, and its redirects name no host at all."""
    app = app_factory("hosts.db", TRUSTED_HOSTS="127.0.0.1,sparekey.example")
    with running(app) as base:
        port = int(base.rsplit(":", 1)[1])

        def ask(path: str, host: str) -> tuple[int, str]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", path, headers={"Host": host})
            response = connection.getresponse()
            response.read()
            connection.close()
            return response.status, response.getheader("Location") or ""

        assert ask("/settings", "evil.example") == (400, "")
        assert ask("/accounts/login/", "evil.example") == (400, "")
        assert ask("/settings", "sparekey.example") == (308, "/settings/")
        assert ask("/accounts/login/", "sparekey.example")[0] == 200
