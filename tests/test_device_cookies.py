"""Device cookies (OWASP "Slow Down Online Guessing Attacks with Device Cookies"): a browser that
has signed in to an account counts its own failures, so strangers who know only the username can
never slow or close the owner's way in from it. Every way in waits on its own failures."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pyotp
import pytest
from sqlalchemy import select

import clock
from extensions import db
from models import AttemptCounter, TrustedDevice, User
from tests.helpers import PASSWORD, Person, csrf_from, give_codes, make_user, turn_on_app
from tools.live import Browser, running
from tools.smtp import Inbox, smtp_server

LOGIN = "/accounts/login/"
CODE_PAGE = "/accounts/password/reset/backup-code/"
TWO_FACTOR = "/accounts/two-factor/"
CAP = 100


def test_signing_in_makes_the_browser_a_trusted_device(app, person, user):
    response = person.login()
    cookie = response.headers.getlist("Set-Cookie")
    device = next(c for c in cookie if c.startswith("sparekey_device="))
    assert "HttpOnly" in device and "SameSite=Lax" in device and "Max-Age=31536000" in device
    with app.app_context():
        assert db.session.scalar(select(TrustedDevice.user_id)) == user
        token_digest = db.session.scalar(select(TrustedDevice.id))
    assert token_digest not in device  # the server keeps only the token's digest
    person.logout()
    again = person.login()
    assert not any(c.startswith("sparekey_device=") for c in again.headers.getlist("Set-Cookie"))


def test_a_forged_device_cookie_is_an_untrusted_client(app, user, frozen_clock):
    """Checklist 24: a forged cookie buys no counter of its own."""
    owner = Person(app.test_client())
    owner.login()
    owner.logout()
    forged = Person(app.test_client())
    value = owner.client.get_cookie("sparekey_device").value
    forged.client.set_cookie("sparekey_device", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    for n in range(5):
        forged.login("alice", f"wrong {n}")
    with app.app_context():
        assert db.session.get(AttemptCounter, f"user:{user}").password_failures == 5
    # The owner's real cookie is untouched by those failures.
    assert owner.login().status_code == 302


def test_each_way_in_waits_on_its_own_failures(app, user, frozen_clock):
    """Checklist 29: code guesses never delay the password, password guesses never delay code
    entry."""
    codes = give_codes(app, user)
    code_guesser = Person(app.test_client())
    code_guesser.start_recovery("alice")
    for n in range(8):
        code_guesser.enter_code(f"{n:08d}")
    assert "Try again in" in code_guesser.enter_code(codes[0]).get_data(as_text=True)
    assert Person(app.test_client()).login().status_code == 302
    password_guesser = Person(app.test_client())
    for n in range(8):
        password_guesser.login("alice", f"wrong {n}")
    assert "Try again in" in password_guesser.login().get_data(as_text=True)
    owner = Person(app.test_client())
    owner.start_recovery("alice")
    assert owner.enter_code(codes[1]).location == "/accounts/password/new/"


@pytest.fixture
def guessable_app(app_factory):
    """Back-off lifted so every guess is evaluated at once; the cap of 100 kept. Client
    addresses come from X-Forwarded-For behind one trusted proxy."""
    return app_factory(
        "guessed.db", FAILURES_BEFORE_BACKOFF=10**6, MAX_CONSECUTIVE_FAILURES=CAP, TRUSTED_PROXIES=1
    )


def strangers(base: str, count: int = 50) -> list[Browser]:
    """Browsers without cookies, each from its own address."""
    return [Browser(base, {"X-Forwarded-For": f"198.51.100.{n + 1}"}) for n in range(count)]


def test_300_passwords_and_300_codes_from_50_addresses_never_close_the_owners_browser(
    guessable_app,
):
    """Checklist 29/30: strangers with only the username close the untrusted counters; the
    owner's browser that signed in before is untouched."""
    app = guessable_app
    user_id = make_user(app)
    codes = give_codes(app, user_id)
    with running(app) as base:
        owner = Browser(base)
        assert owner.log_in("alice", PASSWORD) == 302
        owner.post("/accounts/logout/", {"csrf_token": owner.token("/settings/")})
        attackers = strangers(base)
        refused = 0
        for index in range(300):
            attacker = attackers[index % 50]
            token = attacker.token(LOGIN)
            body = attacker.post(
                LOGIN, {"csrf_token": token, "identifier": "alice", "password": f"guess {index}"}
            )[2]
            refused += "Too many failed attempts with the password" in body
        for index in range(300):
            attacker = attackers[index % 50]
            token = attacker.ready_to_enter_code("alice")
            body = attacker.post(CODE_PAGE, {"csrf_token": token, "code": f"{index:08d}"})[2]
            refused += "Too many wrong codes" in body
        # The cap: 100 of each kind were evaluated, the other 200 of each refused.
        assert refused == 400
        with app.app_context():
            untrusted = db.session.get(AttemptCounter, f"user:{user_id}")
            assert untrusted.password_failures == CAP and untrusted.code_failures == CAP
        # The owner's browser signs in with the password at once, and its "Forgot password?"
        # takes a right code at once: its own counters never saw a stranger's guess.
        assert owner.log_in("alice", PASSWORD) == 302
        owner.post("/accounts/logout/", {"csrf_token": owner.token("/settings/")})
        token = owner.ready_to_enter_code("alice")
        status, location, _ = owner.post(CODE_PAGE, {"csrf_token": token, "code": codes[0]})
        assert (status, location) == (302, "/accounts/password/new/")


def test_guesses_after_a_recovery_code_never_close_the_owners_app_log_in(
    guessable_app, frozen_clock
):
    """Checklist 29/34: someone holding one backup code guesses the app's code at the recovery's
    two-factor step
    until it closes; the owner's password + app log-in (a kind of its own) works at once."""
    app = guessable_app
    user_id = make_user(app)
    codes = give_codes(app, user_id)
    secret = turn_on_app(app, user_id)
    totp = pyotp.TOTP(secret)

    def app_code(at) -> str:
        return totp.at(at.replace(tzinfo=UTC))

    with running(app) as base:
        owner = Browser(base)
        assert owner.log_in("alice", PASSWORD) == 302  # to the two-factor step
        now = frozen_clock()
        owner.post(TWO_FACTOR, {"csrf_token": owner.token(TWO_FACTOR), "code": app_code(now)})
        owner.post("/accounts/logout/", {"csrf_token": owner.token("/settings/")})
        thief = strangers(base, 1)[0]
        token = thief.ready_to_enter_code("alice")
        assert thief.post(CODE_PAGE, {"csrf_token": token, "code": codes[0]})[1] == TWO_FACTOR
        token = thief.token(TWO_FACTOR)
        valid = {app_code(now + timedelta(seconds=30 * step)) for step in (-1, 0, 1)}
        guesses = [f"{n:06d}" for n in range(200) if f"{n:06d}" not in valid][: CAP + 20]
        bodies = [thief.post(TWO_FACTOR, {"csrf_token": token, "code": g})[2] for g in guesses]
        assert sum("Too many wrong codes after a backup code" in b for b in bodies) == 20
        # The owner, a minute later (a new app code), from the browser that signed in before.
        later = frozen_clock(60)
        assert owner.log_in("alice", PASSWORD) == 302
        status, location, _ = owner.post(
            TWO_FACTOR, {"csrf_token": owner.token(TWO_FACTOR), "code": app_code(later)}
        )
        assert (status, location) == (302, "/")


def test_the_owner_on_a_new_browser_gets_back_in_through_an_emailed_unlock_link(app_factory):
    """Checklist 29: 300 wrong passwords and 300 wrong codes from 50 addresses close both ways
    in for untrusted browsers. The owner on a new browser presses "Email me an unlock link",
    follows the link read from a real SMTP server, and uses "Forgot password?" with a right
    code: no operator command. The link works once; an unknown name gets the same answer and
    no mail."""
    with smtp_server() as (inbox, port):
        app = app_factory(
            "unlock.db",
            FAILURES_BEFORE_BACKOFF=10**6,
            MAX_CONSECUTIVE_FAILURES=CAP,
            TRUSTED_PROXIES=1,
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=port,
            SITE_URL="https://sparekey.example",
        )
        user_id = make_user(app, email="alice@example.com")
        codes = give_codes(app, user_id)
        with app.app_context():
            db.session.get(User, user_id).email_verified_at = clock.now()
            db.session.commit()
        with running(app) as base:
            attackers = strangers(base)
            for index in range(300):
                attacker = attackers[index % 50]
                form = {"identifier": "alice", "password": f"guess {index}"}
                attacker.post(LOGIN, {"csrf_token": attacker.token(LOGIN), **form})
            for index in range(300):
                attacker = attackers[index % 50]
                token = attacker.ready_to_enter_code("alice")
                attacker.post(CODE_PAGE, {"csrf_token": token, "code": f"{index:08d}"})
            owner = Browser(base)
            token = owner.ready_to_enter_code("alice")
            body = owner.post(CODE_PAGE, {"csrf_token": token, "code": codes[0]})[2]
            assert "Too many wrong codes" in body and "Email me an unlock link" in body
            for name in ("alice", "nobody"):
                status, location, _ = owner.post(
                    "/accounts/unlock/", {"csrf_token": csrf_from(body), "identifier": name}
                )
                assert (status, location) == (302, "/accounts/login/")
                assert "a link is on its way there" in owner.get(LOGIN)[2]
            closed, closed_codes, mail = inbox.messages
            # Each way in that closed was told of once, with the way back.
            for notice, way in ((closed, "the password"), (closed_codes, "backup codes on")):
                assert (
                    notice["Subject"] == "Sign-in to your Sparekey account paused on new browsers"
                )
                assert way in Inbox.body(notice) and "Email me an unlock link" in Inbox.body(notice)
            assert mail["To"] == "alice@example.com"
            text = Inbox.body(mail)
            assert codes[0] not in text and PASSWORD not in text
            link = re.search(r"https://sparekey\.example(/accounts/unlock/\S+)", text)[1]
            page = owner.get(link)[2]
            assert "Unlock this browser" in page
            assert owner.post(link, {"csrf_token": csrf_from(page)})[1] == "/accounts/login/"
            assert "This browser can sign in to alice again." in owner.get(LOGIN)[2]
            token = owner.ready_to_enter_code("alice")
            status, location, _ = owner.post(CODE_PAGE, {"csrf_token": token, "code": codes[0]})
            assert (status, location) == (302, "/accounts/password/new/")
            # Once only: a second browser gets nothing with the same link, nor with another
            # spelling of it that still verifies (a character the signature check drops).
            for spelling in (link, link + "%C3%A9"):
                other = Browser(base)
                page = other.get(spelling)[2]
                other.post(spelling, {"csrf_token": csrf_from(page)})
                assert "That link is not valid" in other.get(LOGIN)[2]
            with app.app_context():
                assert len(db.session.scalars(select(TrustedDevice.id)).all()) == 1
