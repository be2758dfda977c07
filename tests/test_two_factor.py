"""The authentication app: set-up, the two-factor step, recovery with two factors, the notice."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from cryptography.fernet import InvalidToken
from sqlalchemy import select

from extensions import db
from models import AttemptCounter, BackupCode, PendingLogin, SecurityEvent, User, UserSession
from security.keys import KeyRing
from security.totp import (
    TotpFormatError,
    accept_code,
    decrypt_secret,
    matching_step,
    normalise_totp_input,
)
from tests.helpers import (
    PASSWORD,
    T0,
    Person,
    codes_from,
    count,
    csrf_from,
    current_keys,
    snapshot,
    table_dump,
    turn_on_app,
)

TWO_FACTOR = "/accounts/two-factor/"
TWO_FACTOR_CODE = "/accounts/two-factor/backup-code/"
SETUP = "/settings/security/two-factor/app/setup/"
APP = "/settings/security/two-factor/app/"
NEW = "a fresh start passphrase"


def app_code(secret: str, at: datetime, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at((at + timedelta(seconds=30 * steps)).replace(tzinfo=UTC))


# The domain, with a fixed clock


@pytest.mark.parametrize(
    ("raw", "expected"), [("123456", "123456"), ("123 456", "123456"), (" 123-456 ", "123456")]
)
def test_app_codes_accept_spaces_and_dashes(raw, expected):
    assert normalise_totp_input(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter the 6-digit code"),
        ("12345", "6 digits"),
        ("1234567", "6 digits"),
        ("abcdef", "6 digits"),
        ("１２３４５６", "6 digits"),
        ("1" * 50, "too long"),
    ],
)
def test_app_codes_of_the_wrong_shape_are_refused(raw, message):
    with pytest.raises(TotpFormatError, match=message):
        normalise_totp_input(raw)


def test_one_step_of_drift_either_way_and_no_more():
    secret = pyotp.random_base32()
    for steps in (-1, 0, 1):
        assert matching_step(secret, app_code(secret, T0, steps), T0) is not None
    for steps in (-3, -2, 2, 3):
        assert matching_step(secret, app_code(secret, T0, steps), T0) is None


def test_a_code_is_accepted_once_and_older_steps_never_after_a_newer_one(app, user, frozen_clock):
    secret = turn_on_app(app, user)
    with app.app_context():
        alice = db.session.get(User, user)
        now_code, earlier = app_code(secret, T0), app_code(secret, T0, -1)
        assert accept_code(db.session, current_keys(), alice, now_code, T0)
        db.session.commit()
        db.session.refresh(alice)
        assert not accept_code(db.session, current_keys(), alice, now_code, T0)
        assert not accept_code(db.session, current_keys(), alice, earlier, T0)
        later = T0 + timedelta(seconds=30)
        assert accept_code(db.session, current_keys(), alice, app_code(secret, later), later)


def test_secrets_are_encrypted_at_rest(app, user, frozen_clock):
    secret = turn_on_app(app, user)
    with app.app_context():
        stored = db.session.scalar(select(User.totp_secret))
        dump = table_dump(app)
        assert secret not in dump and secret.lower() not in dump
        assert decrypt_secret(current_keys(), stored) == secret
    other = KeyRing(pepper=b"p", password_cost=4, code_cost=4, encryption_key=encrypt_key())
    with pytest.raises(InvalidToken):
        decrypt_secret(other, stored)


def encrypt_key() -> bytes:
    from cryptography.fernet import Fernet

    return Fernet.generate_key()


# Setting the app up


def start_setup(person: Person) -> tuple[str, str]:
    """Press "Set up authentication app"; return the page and the key it shows."""
    person.submit(APP, {"start-submit": "1"}, action=SETUP)
    page = person.client.get(SETUP).get_data(as_text=True)
    key = re.search(r'class="setup-key"[^>]*>([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    return page, key


def test_set_up_with_a_valid_code_then_the_first_sheet_follows(app, person, user, frozen_clock):
    person.login()
    page, key = start_setup(person)
    assert "<svg" in page and 'aria-label="QR code for your authentication app"' in page
    main = page.split("<main")[1].split("</main>")[0]
    assert "<script" not in main and "style=" not in main
    response = person.submit(
        SETUP, {"code": app_code(key, T0), "password": PASSWORD, "submit": "1"}
    )
    assert response.status_code == 303
    assert response.location == "/settings/security/two-factor/backup-codes/new/"
    html = person.client.get(response.location).get_data(as_text=True)
    assert "Your authentication app is on" in html
    assert len(codes_from(html)) == 10
    assert "On" in person.client.get("/settings/security/two-factor/").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user).totp_pending_secret is None


def test_set_up_when_codes_exist_goes_back_to_two_factor(
    app, person, user, user_codes, frozen_clock
):
    person.login()
    _, key = start_setup(person)
    response = person.submit(
        SETUP, {"code": app_code(key, T0), "password": PASSWORD, "submit": "1"}
    )
    assert response.status_code == 302 and response.location == "/settings/security/two-factor/"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"code": "000000", "password": PASSWORD}, "That code did not match"),
        ({"code": "12345", "password": PASSWORD}, "6 digits"),
        ({"code": "abcdef", "password": PASSWORD}, "6 digits"),
        ({"code": "GOOD", "password": "wrong password"}, "That password is not right"),
    ],
)
def test_bad_set_up_changes_nothing(app, person, user, frozen_clock, fields, message):
    person.login()
    _, key = start_setup(person)
    if fields["code"] == "GOOD":
        fields = {**fields, "code": app_code(key, T0)}
    if fields["code"] == "000000" and app_code(key, T0) == "000000":
        fields["code"] = "111111"
    before = snapshot(app, ignore=("attempt_counters", "security_events"))
    response = person.submit(SETUP, {**fields, "submit": "1"})
    assert message in response.get_data(as_text=True)
    assert snapshot(app, ignore=("attempt_counters", "security_events")) == before
    with app.app_context():
        assert db.session.get(User, user).totp_secret is None


def test_a_code_from_the_previous_set_up_fails_after_a_reset(app, person, user, frozen_clock):
    person.login()
    _, old_key = start_setup(person)
    _, new_key = start_setup(person)
    assert old_key != new_key
    response = person.submit(
        SETUP, {"code": app_code(old_key, T0), "password": PASSWORD, "submit": "1"}
    )
    assert "That code did not match" in response.get_data(as_text=True)
    response = person.submit(
        SETUP,
        {"code": app_code(new_key, T0), "password": PASSWORD, "submit": "1"},
        follow_redirects=True,
    )
    assert "Your authentication app is on" in response.get_data(as_text=True)


def test_wrong_set_up_codes_count_on_the_account_counter(app, person, user, frozen_clock):
    """The set-up form is one attempt of the account's counter, password and code together:
    a right password with a wrong code is a failure, so the 6th try waits, even a right one."""
    person.login()
    _, key = start_setup(person)
    near = {app_code(key, T0, s) for s in (-1, 0, 1)}
    wrong = [c for c in (f"{n}{n}{n}{n}{n}{n}" for n in range(10)) if c not in near][:5]
    for code in wrong:
        body = person.submit(SETUP, {"code": code, "password": PASSWORD, "submit": "1"})
        assert "That code did not match" in body.get_data(as_text=True)
    assert count(app, SecurityEvent, SecurityEvent.kind == "app_setup_code_failed") == 5
    body = person.submit(SETUP, {"code": app_code(key, T0), "password": PASSWORD, "submit": "1"})
    assert "Too many failed attempts" in body.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user).totp_secret is None
    frozen_clock(2)
    body = person.submit(
        SETUP,
        {"code": app_code(key, T0), "password": PASSWORD, "submit": "1"},
        follow_redirects=True,
    )
    assert "Your authentication app is on" in body.get_data(as_text=True)
    events_page = person.client.get("/settings/security/events/").get_data(as_text=True)
    assert "Wrong code while turning on the authentication app" in events_page


def test_the_old_app_stops_working_when_it_is_replaced(app, person, user, user_codes, frozen_clock):
    """App on with key A, turned off, on again with key B: a code from A no longer logs in."""
    person.login()
    _, key_a = start_setup(person)
    person.submit(SETUP, {"code": app_code(key_a, T0), "password": PASSWORD, "submit": "1"})
    with app.app_context():
        assert db.session.get(User, user).totp_secret is not None
    off = {"off-password": PASSWORD, "off-factor": app_code(key_a, T0, 1)}
    person.submit(APP, off, action=APP + "off/")
    with app.app_context():
        assert db.session.get(User, user).totp_secret is None
    _, key_b = start_setup(person)
    assert key_b != key_a
    frozen_clock(60)
    body = person.submit(
        SETUP, {"code": app_code(key_b, T0, 2), "password": PASSWORD, "submit": "1"}
    )
    assert body.status_code == 302 and body.location == "/settings/security/two-factor/"
    person.logout()
    frozen_clock(120)
    visitor = Person(app.test_client())
    assert visitor.login().location == TWO_FACTOR
    refused = visitor.submit(TWO_FACTOR, {"code": app_code(key_a, T0, 4)})
    assert "That code did not work" in refused.get_data(as_text=True)
    assert count(app, UserSession) == 0
    response = visitor.submit(TWO_FACTOR, {"code": app_code(key_b, T0, 4)})
    assert response.location == "/"


def test_turning_off_needs_the_password_and_the_app(app, person, user, user_with_app, frozen_clock):
    """What a log-in asks: a session and the password alone do not remove the app."""
    person.login()
    person.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0)})
    off = "/settings/security/two-factor/app/off/"
    fresh = app_code(user_with_app, T0, 1)
    body = person.submit(APP, {"off-password": "wrong!!", "off-factor": fresh}, action=off)
    assert "That password is not right" in body.get_data(as_text=True)
    body = person.submit(APP, {"off-password": PASSWORD}, action=off)
    assert "needs your password and a code from the app" in body.get_data(as_text=True)
    body = person.submit(APP, {"off-password": PASSWORD, "off-factor": "12345"}, action=off)
    assert "Enter the 6-digit code from your app, or an 8-digit" in body.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user).totp_secret is not None
    response = person.submit(APP, {"off-password": PASSWORD, "off-factor": fresh}, action=off)
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(User, user).totp_secret is None
    assert "Authentication app turned off" in person.client.get(
        "/settings/security/events/"
    ).get_data(as_text=True)


# Logging in with the app


def test_the_password_alone_does_not_log_in(app, person, user, user_with_app, frozen_clock):
    response = person.login()
    assert response.status_code == 302 and response.location == TWO_FACTOR
    page = person.client.get(TWO_FACTOR).get_data(as_text=True)
    assert "Enter the 6-digit code from your authentication app." in page
    assert "Use a backup code" in page
    assert count(app, UserSession) == 0
    response = person.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0, 1)})
    assert response.status_code == 302 and response.location == "/"
    assert person.client.get("/settings/").status_code == 200
    assert count(app, PendingLogin) == 0


def test_a_used_app_code_is_refused_the_second_time(app, user, user_with_app, frozen_clock):
    code = app_code(user_with_app, T0)
    first = Person(app.test_client())
    first.login()
    assert first.submit(TWO_FACTOR, {"code": code}).location == "/"
    second = Person(app.test_client())
    second.login()
    response = second.submit(TWO_FACTOR, {"code": code})
    assert "That code did not work" in response.get_data(as_text=True)
    assert count(app, UserSession) == 1


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", ""])
def test_wrong_shapes_at_the_two_factor_step_are_not_counted(
    app, person, user, user_with_app, frozen_clock, code
):
    person.login()
    before = snapshot(app)
    response = person.submit(TWO_FACTOR, {"code": code})
    assert response.status_code == 200
    assert "6-digit" in response.get_data(as_text=True) or "6 digits" in response.get_data(
        as_text=True
    )
    assert snapshot(app) == before


def wrong_app_codes(secret: str, how_many: int) -> list[str]:
    near = {app_code(secret, T0, s) for s in (-1, 0, 1)}
    return [c for c in (f"{n:06d}" for n in range(how_many + 3)) if c not in near][:how_many]


def test_wrong_app_codes_are_throttled_before_any_check(app, user, user_with_app, frozen_clock):
    person = Person(app.test_client())
    person.login()
    wrong = wrong_app_codes(user_with_app, 6)
    bodies = [person.submit(TWO_FACTOR, {"code": c}).get_data(as_text=True) for c in wrong]
    assert all("That code did not work" in body for body in bodies[:5])
    assert "Too many failed attempts" in bodies[5]
    assert count(app, SecurityEvent, SecurityEvent.kind == "app_code_failed") == 5
    good = person.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0)})
    assert "Too many failed attempts" in good.get_data(as_text=True)


def test_guessing_backup_codes_never_closes_the_owners_two_factor_log_in(
    app, user, user_codes, user_with_app, frozen_clock
):
    """Checklist 29: someone without the password guesses codes on "Forgot password?" until the
    code entry closes; the owner still logs in with the password and the app, the same minute."""
    attacker = Person(app.test_client())
    attacker.client.environ_base["REMOTE_ADDR"] = "203.0.113.66"
    attacker.start_recovery("alice")
    seconds = 0
    for index in range(100):
        body = attacker.enter_code(f"{index:08d}").get_data(as_text=True)
        if "Try again in" in body:
            # Wait out the back-off, as a patient attacker would, so every guess is counted.
            seconds += 15 * 60
            frozen_clock(seconds)
            attacker.enter_code(f"{index:08d}")
    closed = attacker.enter_code(user_codes[0]).get_data(as_text=True)
    assert "Too many wrong codes from browsers this account has not signed in with" in closed
    when = frozen_clock(seconds + 60)
    owner = Person(app.test_client())
    assert owner.login().location == TWO_FACTOR
    response = owner.submit(TWO_FACTOR, {"code": app_code(user_with_app, when)})
    assert response.status_code == 302 and response.location == "/"
    assert "There were 100 failed attempts" in owner.client.get("/").get_data(as_text=True)


def test_mistyped_passwords_do_not_slow_the_app_code(app, user, user_with_app, frozen_clock):
    owner = Person(app.test_client())
    for n in range(5):
        owner.login("alice", f"not my password {n}")
    frozen_clock(60)
    assert owner.login().location == TWO_FACTOR
    response = owner.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0, 2)})
    assert response.location == "/"


def test_the_app_code_step_closes_after_100_wrong_codes(app, user, user_with_app, frozen_clock):
    """Someone who has the password gets 100 guesses at the second factor, then the step
    closes for everyone until an operator reopens it; the password log-in itself still answers."""
    with app.app_context():
        db.session.add(AttemptCounter(key=f"user:{user}", failures=99, second_factor_failures=99))
        db.session.commit()
    person = Person(app.test_client())
    assert person.login().location == TWO_FACTOR
    body = person.submit(TWO_FACTOR, {"code": wrong_app_codes(user_with_app, 1)[0]})
    assert "That code did not work" in body.get_data(as_text=True)
    before = snapshot(app, ignore=("pending_logins",))
    frozen_clock(24 * 3600)
    person = Person(app.test_client())
    assert person.login().location == TWO_FACTOR
    body = person.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0 + timedelta(days=1))})
    text = body.get_data(as_text=True)
    assert "This step stays closed until the site&#39;s administrator reopens the account" in text
    assert count(app, UserSession) == 0
    assert snapshot(app, ignore=("pending_logins", "attempt_counters")) == {
        k: v for k, v in before.items() if k != "attempt_counters"
    }


def test_knowing_the_password_does_not_reset_the_counter_between_guesses(
    app, user, user_with_app, frozen_clock
):
    """Log in with the right password before every guess: at most 5 app codes are ever checked."""
    refused = 0
    for guess in ("000001", "000002", "000003", "000004", "000005", "000006", "000007"):
        person = Person(app.test_client())
        response = person.login()
        if response.location != TWO_FACTOR:
            refused += 1
            continue
        body = person.submit(TWO_FACTOR, {"code": guess}).get_data(as_text=True)
        refused += "Too many failed attempts" in body
    checked = count(app, SecurityEvent, SecurityEvent.kind == "app_code_failed")
    assert checked <= 5 and refused >= 2 and checked + refused == 7


def test_the_two_factor_step_starts_a_new_session_cookie_and_csrf_token(
    app, person, user, user_codes, user_with_app, frozen_clock
):
    """Checklist 56, for a log-in finished by the app, and for a recovery finished by a second
    backup code: the tokens of the half-logged-in state are refused afterwards."""
    for finish in ("app", "second backup code"):
        person = Person(app.test_client())
        if finish == "app":
            assert person.login().location == TWO_FACTOR
            page, code = TWO_FACTOR, app_code(user_with_app, T0)
        else:
            person.start_recovery("alice")
            assert person.enter_code(user_codes[0]).location == TWO_FACTOR
            page, code = TWO_FACTOR_CODE, user_codes[1]
        token_before = csrf_from(person.client.get(page).get_data(as_text=True))
        cookie_before = person.client.get_cookie("session").value
        response = person.client.post(page, data={"csrf_token": token_before, "code": code})
        assert response.status_code == 302, finish
        assert person.client.get_cookie("session").value != cookie_before
        # A recovery goes on to the new password first; that page has a form of its own.
        after_page = "/settings/" if finish == "app" else "/accounts/password/new/"
        assert response.location in ("/", after_page)
        after = person.client.get(after_page).get_data(as_text=True)
        assert csrf_from(after) != token_before
        refused = person.client.post("/accounts/logout/", data={"csrf_token": token_before})
        assert refused.status_code == 400


def test_the_two_factor_step_needs_the_password_step(
    app, person, user, user_with_app, frozen_clock
):
    response = person.client.get(TWO_FACTOR)
    assert response.status_code == 302 and response.location == "/accounts/login/"
    token = csrf_from(person.client.get("/accounts/login/").get_data(as_text=True))
    response = person.client.post(
        TWO_FACTOR, data={"csrf_token": token, "code": app_code(user_with_app, T0)}
    )
    assert response.status_code == 302 and response.location == "/accounts/login/"
    assert count(app, UserSession) == 0


def test_the_half_logged_in_state_expires_after_5_minutes(
    app, person, user, user_with_app, frozen_clock
):
    person.login()
    token = csrf_from(person.client.get(TWO_FACTOR).get_data(as_text=True))
    frozen_clock(5 * 60 + 1)
    response = person.client.post(
        TWO_FACTOR, data={"csrf_token": token, "code": app_code(user_with_app, T0, 10)}
    )
    assert response.location == "/accounts/login/"
    assert count(app, UserSession) == 0 and count(app, PendingLogin) == 0


def test_any_other_page_wipes_the_half_logged_in_state(
    app, person, user, user_with_app, frozen_clock
):
    person.login()
    assert count(app, PendingLogin) == 1
    assert person.client.get("/settings/").status_code == 302
    assert count(app, PendingLogin) == 0
    response = person.submit(
        "/accounts/login/", {"code": app_code(user_with_app, T0)}, action=TWO_FACTOR
    )
    assert response.location == "/accounts/login/"


def test_a_tampered_hidden_field_naming_another_user_is_ignored(
    app, user, other_user, user_with_app, frozen_clock
):
    bob_secret = turn_on_app(app, other_user)
    person = Person(app.test_client())
    person.login()
    response = person.submit(
        TWO_FACTOR,
        {"code": app_code(bob_secret, T0), "user_id": str(other_user), "username": "bob"},
    )
    assert "That code did not work" in response.get_data(as_text=True)
    response = person.submit(
        TWO_FACTOR, {"code": app_code(user_with_app, T0), "user_id": str(other_user)}
    )
    assert response.location == "/"
    page = person.client.get("/").get_data(as_text=True)
    assert "Hi, alice" in page


# A backup code at the two-factor step, and the notice


def test_a_backup_code_instead_of_the_app(app, user, user_codes, user_with_app, frozen_clock):
    """Checklist 38: the owner's other session is told a backup code was used."""
    laptop = Person(app.test_client())
    laptop.login()
    laptop.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0)})
    phone = Person(app.test_client())
    phone.login()
    page = phone.client.get(TWO_FACTOR_CODE).get_data(as_text=True)
    assert "Use your authentication app instead" in page
    response = phone.submit(TWO_FACTOR_CODE, {"code": user_codes[4]})
    assert response.location == "/"
    home = phone.client.get("/").get_data(as_text=True)
    assert "You used backup code #5. 9 codes left." in home
    assert "A backup code was used" not in home
    assert not phone.client.get_cookie("remember_token")
    # The other session sees who used it.
    notice = laptop.client.get("/").get_data(as_text=True)
    assert "A backup code was used" in notice and "Code #5, 9 left" in notice
    assert (
        "Wasn&#39;t you? Secure your account" in notice
        or "Wasn't you? Secure your account" in notice
    )
    laptop.submit("/", {}, action="/settings/security/notice/dismiss/")
    assert "A backup code was used" not in laptop.client.get("/").get_data(as_text=True)


def test_wasnt_you_ends_every_session_and_voids_the_codes(
    app, user, user_codes, user_with_app, frozen_clock
):
    laptop = Person(app.test_client())
    laptop.login()
    laptop.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0)})
    intruder = Person(app.test_client())
    intruder.login()
    intruder.submit(TWO_FACTOR_CODE, {"code": user_codes[0]})
    page = "/settings/security/secure/"
    fresh = app_code(user_with_app, T0, 1)
    form = {"pw-password": "not it", "pw-factor": fresh, "pw-submit": "1"}
    body = laptop.submit(page, form).get_data(as_text=True)
    assert "That password is not right" in body
    body = laptop.submit(page, {"pw-password": PASSWORD, "pw-submit": "1"}).get_data(as_text=True)
    assert "needs your password and a code from the app" in body
    assert intruder.client.get("/settings/").status_code == 200
    response = laptop.submit(page, {"pw-password": PASSWORD, "pw-factor": fresh, "pw-submit": "1"})
    assert response.location == "/accounts/password/new/"
    assert intruder.client.get("/settings/").status_code == 302
    assert count(app, BackupCode) == 0
    assert count(app, UserSession) == 1
    laptop.submit("/accounts/password/new/", {"password": NEW, "confirm": NEW})
    assert "Account secured" in laptop.client.get("/settings/security/events/").get_data(
        as_text=True
    )


def test_wasnt_you_with_a_backup_code(app, person, user, user_codes, frozen_clock):
    person.login()
    response = person.submit(
        "/settings/security/secure/", {"code-code": user_codes[1], "code-submit": "1"}
    )
    assert response.location == "/accounts/password/new/"
    assert count(app, BackupCode) == 0


# "Forgot password?" when the app is on


def test_recovery_needs_the_app_too(app, person, user, user_codes, user_with_app, frozen_clock):
    """Checklist 34: with the app on, one backup code is not enough."""
    person.start_recovery("alice")
    response = person.enter_code(user_codes[2])
    assert response.location == TWO_FACTOR
    page = person.client.get(TWO_FACTOR).get_data(as_text=True)
    assert "one backup code is not enough" in page and "Use a second backup code" in page
    assert count(app, UserSession) == 0
    assert count(app, BackupCode, BackupCode.used_at.is_not(None)) == 0
    response = person.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0)})
    assert response.location == "/accounts/password/new/"
    page = person.client.get(response.location).get_data(as_text=True)
    assert "You used backup code #3. 9 codes left." in page
    assert count(app, BackupCode, BackupCode.used_at.is_not(None)) == 1


def test_recovery_with_two_backup_codes_when_the_phone_is_lost(
    app, person, user, user_codes, user_with_app, frozen_clock
):
    person.start_recovery("alice")
    person.enter_code(user_codes[2])
    same = person.submit(TWO_FACTOR_CODE, {"code": user_codes[2]})
    assert "That code did not work" in same.get_data(as_text=True)
    response = person.submit(TWO_FACTOR_CODE, {"code": user_codes[6]})
    assert response.location == "/accounts/password/new/"
    page = person.client.get(response.location).get_data(as_text=True)
    assert "You used backup codes #3 and #7. 8 codes left." in page
    assert count(app, BackupCode, BackupCode.used_at.is_not(None)) == 2


def test_an_abandoned_recovery_spends_nothing(
    app, person, user, user_codes, user_with_app, frozen_clock
):
    person.start_recovery("alice")
    person.enter_code(user_codes[2])
    person.client.get("/accounts/login/")
    assert count(app, PendingLogin) == 0
    assert count(app, BackupCode, BackupCode.used_at.is_not(None)) == 0
    assert Person(app.test_client()).start_recovery("alice").location


def test_the_first_code_used_elsewhere_meanwhile_stops_the_recovery(
    app, user, user_codes, user_with_app, frozen_clock
):
    person = Person(app.test_client())
    person.start_recovery("alice")
    person.enter_code(user_codes[2])
    elsewhere = Person(app.test_client())
    elsewhere.login()
    elsewhere.submit(TWO_FACTOR_CODE, {"code": user_codes[2]})
    response = person.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0, 1)})
    assert response.location == "/accounts/password/reset/"
    assert "was used meanwhile" in person.client.get(response.location).get_data(as_text=True)


def test_events_page_shows_what_when_and_where(app, person, user, user_with_app, frozen_clock):
    person.client.environ_base["HTTP_USER_AGENT"] = (
        "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"
    )
    person.login()
    person.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0)})
    page = person.client.get("/settings/security/events/").get_data(as_text=True)
    assert "Logged in (with the authentication app)" in page
    assert "Chrome on Linux" in page and "127.0.0.1" in page
    with app.app_context():
        details = " ".join(db.session.scalars(select(SecurityEvent.detail)))
    assert user_with_app not in details


def test_codes_still_work_after_the_app_is_turned_off(
    app, person, user, user_codes, user_with_app, frozen_clock
):
    """A decision: backup codes are the way back in without a password, so they stay."""
    person.login()
    person.submit(TWO_FACTOR, {"code": app_code(user_with_app, T0)})
    person.submit(
        APP,
        {"off-password": PASSWORD, "off-factor": app_code(user_with_app, T0, 1)},
        action="/settings/security/two-factor/app/off/",
    )
    person.logout()
    person.start_recovery("alice")
    assert person.enter_code(user_codes[0]).location == "/accounts/password/new/"
