"""Sign up, log in, log out: what a person sees, and what an attacker gets."""

from __future__ import annotations

from unittest import mock

import bcrypt
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import SecurityEvent, User, UserSession
from tests.helpers import PASSWORD, Person, count, csrf_from, make_user, snapshot, user_by_name


def test_sign_up_then_land_home_logged_in(app, person):
    response = person.signup("Alice", PASSWORD, email="Alice@Example.com", phone="+1 555 010 0199")
    assert response.status_code == 302 and response.location == "/"
    page = person.client.get("/").get_data(as_text=True)
    assert "Hi, alice" in page and "Security status" in page
    alice = user_by_name(app, "alice")
    assert alice.email == "alice@example.com"
    assert alice.phone == "+15550100199"
    assert alice.password_hash.startswith("$2b$04$")
    assert PASSWORD not in alice.password_hash
    with app.app_context():
        kinds = db.session.scalars(select(SecurityEvent.kind)).all()
    assert kinds == ["signed_up", "logged_in"]


def test_sign_up_needs_only_username_and_password(app):
    for name in ("carol", "dave"):
        response = Person(app.test_client()).signup(name, PASSWORD, email="", phone="")
        assert response.status_code == 302, response.get_data(as_text=True)
        account = user_by_name(app, name)
        assert account.email is None and account.phone is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": "alice"}, "This username is taken"),
        ({"username": "ALICE "}, "This username is taken"),
        ({"username": "ab"}, "Use 3 to 30 characters"),
        ({"username": "a b c"}, "Use 3 to 30 characters"),
        ({"username": "<script>x</script>"}, "Use 3 to 30 characters"),
        ({"username": "settings"}, "not available"),
        ({"username": "newname", "email": "not-an-email"}, "Enter an email address"),
        ({"username": "newname", "phone": "call me"}, "Enter a phone number"),
        ({"username": "newname", "password": "short"}, "Use at least 8 characters"),
        ({"username": "newname", "password": "password123"}, "too common"),
        ({"username": "newname", "password": "qwertyuiop"}, "too common"),
        ({"username": "newname", "password": "newname123"}, "too close to your username"),
        (
            {"username": "newname", "password": "sparekey1!"},
            "too close to your username or the site",
        ),
        ({"username": "newname", "password": ""}, "Choose a password."),
    ],
)
def test_bad_sign_up_gets_a_reason_and_changes_nothing(app, person, user, fields, message):
    """Checklist 48: refused with a reason (common, close to the name) and nothing stored."""
    before = snapshot(app)
    data = {"username": "", "password": "a perfectly fine passphrase", **fields}
    response = person.submit("/accounts/signup/", data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_password_length_counts_code_points(app, person):
    """Checklist 45: 8 characters of 4 bytes each is 8, not 32."""
    response = person.signup("emoji", "🙂🙂🙂🙂🙂🙂🙂")
    assert "Use at least 8 characters" in response.get_data(as_text=True)
    assert person.signup("emoji", "🙂🙂🙂🙂🙂🙂🙂🐘").status_code == 302


def test_passwords_over_72_bytes_work_and_are_not_truncated(app, person):
    """Checklist 44/46: bcrypt's limit neither crashes nor truncates."""
    long_password = "🐘" * 30 + "tail one"
    assert len(long_password.encode()) > 72
    assert person.signup("longpw", long_password).status_code == 302
    person.logout()
    same_prefix = "🐘" * 30 + "tail two"
    response = person.login("longpw", same_prefix)
    assert "incorrect" in response.get_data(as_text=True)
    assert person.login("longpw", long_password).status_code == 302


def test_nfkc_makes_composed_and_decomposed_letters_equal(app, person):
    """Checklist 49."""
    assert person.signup("accent", "caf\u00e9 au lait please").status_code == 302
    person.logout()
    assert person.login("accent", "cafe\u0301 au lait please").status_code == 302


@pytest.mark.parametrize(
    "identifier", ["alice", "ALICE", " alice ", "alice@example.com", "+1 555 010 0199"]
)
def test_log_in_by_username_email_or_phone(app, person, user, identifier):
    response = person.login(identifier, PASSWORD)
    assert response.status_code == 302 and response.location == "/"
    assert count(app, UserSession) == 1


def test_wrong_password_and_unknown_user_look_the_same(app, client, user):
    """Checklist 40/41: same status and body (CSRF token aside), one bcrypt check each."""
    bodies = []
    for identifier, password in (("alice", "wrong password!"), ("nobody", "wrong password!")):
        fresh = Person(app.test_client())
        with mock.patch.object(bcrypt, "checkpw", wraps=bcrypt.checkpw) as checkpw:
            response = fresh.login(identifier, password)
        assert checkpw.call_count == 1
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert "The username or password is incorrect." in body
        bodies.append(body.replace(csrf_from(body), "TOKEN").replace(identifier, "NAME"))
    assert bodies[0] == bodies[1]


def test_failed_log_in_is_recorded_for_the_owner(app, person, user):
    person.login("alice", "wrong password!")
    with app.app_context():
        assert db.session.scalars(select(SecurityEvent.kind)).all()[-1] == "login_failed"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "//evil.example",
        "\\\\evil.example",
        "/\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "%2F%2Fevil.example",
        "\t//evil.example",
        " //evil.example",
        "/%09/evil.example",
    ],
)
def test_next_pointing_off_site_is_ignored(app, person, user, target):
    """Checklist 43."""
    response = person.login("alice", PASSWORD, query_string={"next": target})
    assert response.status_code == 302
    # Off-site targets fall back to home; "/%09/..." is a path on this site and stays one.
    expected = target if target == "/%09/evil.example" else "/"
    assert response.location == expected


def test_next_on_site_is_followed(app, person, user):
    response = person.login("alice", PASSWORD, query_string={"next": "/settings/security/"})
    assert response.location == "/settings/security/"


def test_log_in_starts_a_new_session_cookie_and_csrf_token(app, person, user):
    """Checklist 56."""
    page = person.client.get("/accounts/login/").get_data(as_text=True)
    token_before = csrf_from(page)
    cookie_before = person.client.get_cookie("session").value
    person.client.post(
        "/accounts/login/",
        data={"csrf_token": token_before, "identifier": "alice", "password": PASSWORD},
    )
    cookie_after = person.client.get_cookie("session").value
    assert cookie_after != cookie_before
    token_after = csrf_from(person.client.get("/settings/").get_data(as_text=True))
    assert token_after != token_before
    # The pre-log-in token is no longer accepted.
    response = person.client.post("/accounts/logout/", data={"csrf_token": token_before})
    assert response.status_code == 400


def test_log_out_is_post_with_csrf(app, person, user):
    """Checklist 58."""
    person.login()
    assert person.client.get("/accounts/logout/").status_code == 405
    assert person.client.post("/accounts/logout/").status_code == 400
    assert count(app, UserSession) == 1
    response = person.logout()
    assert response.status_code == 302 and response.location == "/accounts/login/"
    assert count(app, UserSession) == 0


def test_a_cookie_copied_before_log_out_is_dead_after_it(app, person, user):
    """Checklist 57: replay the copied cookie from a fresh client."""
    person.login()
    stolen = person.client.get_cookie("session").value
    assert person.client.get("/settings/").status_code == 200
    person.logout()
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    response = thief.get("/settings/security/")
    assert response.status_code == 302
    assert response.location.startswith("/accounts/login/")


@pytest.mark.parametrize(
    "fields", [{}, {"csrf_token": "forged"}], ids=["missing token", "wrong token"]
)
def test_forms_without_a_valid_csrf_token_are_refused(app, client, user, fields):
    """Checklist 42/66: 400 and nothing changed."""
    before = snapshot(app)
    for url, data in (
        ("/accounts/signup/", {"username": "mallory", "password": "a fine long passphrase"}),
        ("/accounts/login/", {"identifier": "alice", "password": PASSWORD}),
        ("/accounts/password/reset/backup-code/", {"code": "12345678"}),
    ):
        response = client.post(url, data={**data, **fields})
        assert response.status_code == 400
        assert "did not come from this site" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_signed_in_pages_need_a_login(client):
    for url in (
        "/settings/",
        "/settings/security/",
        "/settings/security/two-factor/",
        "/settings/security/two-factor/backup-codes/",
        "/settings/security/two-factor/backup-codes/confirm/",
        "/settings/security/password/",
        "/settings/security/sessions/",
        "/alice/",
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.location.startswith("/accounts/login/?next="), url


def test_usernames_are_escaped_on_pages(app, person):
    """Checklist 72: user-controlled text is escaped."""
    make_user(app, "dana", PASSWORD, display_name="<script>alert(1)</script>")
    person.login("dana", PASSWORD)
    page = person.client.get("/dana/").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_change_password_needs_the_current_one_and_ends_other_sessions(app, user):
    """Checklist 51/61."""
    laptop, phone = Person(app.test_client()), Person(app.test_client())
    laptop.login()
    phone.login()
    page = "/settings/security/password/"
    new = "a brand new passphrase"
    before = snapshot(app, ignore=("attempt_counters", "security_events"))
    response = laptop.submit(
        page, {"current_password": "wrong one!", "password": new, "confirm": new}
    )
    assert "That password is not right. Nothing was changed." in response.get_data(as_text=True)
    assert snapshot(app, ignore=("attempt_counters", "security_events")) == before
    response = laptop.submit(page, {"current_password": PASSWORD, "password": new, "confirm": new})
    assert response.status_code == 302
    assert phone.client.get("/settings/").status_code == 302
    assert laptop.client.get("/settings/").status_code == 200
    laptop.logout()
    assert "incorrect" in laptop.login("alice", PASSWORD).get_data(as_text=True)
    assert laptop.login("alice", new).status_code == 302


def test_profile_pages(app, person, user, other_user):
    person.login()
    own = person.client.get("/alice/").get_data(as_text=True)
    assert 'aria-label="Options"' in own and ">Settings<" in own
    other = person.client.get("/bob/").get_data(as_text=True)
    assert 'aria-label="Options"' not in other
    assert person.client.get("/nobody-here/").status_code == 404


@pytest.mark.parametrize(
    "taken",
    [
        {"username": "alice"},
        {"email": "alice@example.com"},
        {"phone": "+15550100199"},
    ],
)
def test_users_table_has_unique_identifiers(app, user, taken):
    """The database itself refuses a second account with a taken username, email or phone, even
    when the form's checks are bypassed."""
    other = {"username": "mallory", "email": "mallory@example.com", "phone": "+15550100200"}
    with app.app_context():
        db.session.add(User(**(other | taken), password_hash="$2b$04$" + "x" * 53))
        with pytest.raises(IntegrityError) as refused:
            db.session.commit()
        db.session.rollback()
    message = str(refused.value.orig).lower()
    assert "unique" in message and next(iter(taken)) in message
    assert count(app, User) == 1
