"""Locked out: "Forgot password?" → "Use a backup code" → one code → back in, new password."""

from __future__ import annotations

from unittest import mock

import bcrypt
import pytest
from sqlalchemy import select

from extensions import db
from models import AttemptCounter, BackupCode, SecurityEvent, UserSession
from tests.helpers import PASSWORD, Person, csrf_from, give_codes, snapshot

CODE_PAGE = "/accounts/password/reset/backup-code/"
FAILED = "That code did not work."
NEW = "a fresh start passphrase"


def test_forgot_password_carries_the_typed_username(app, person, user):
    """R1 → R2: the log-in form's "Forgot password?" posts the typed name, never a password."""
    login_page = person.client.get("/accounts/login/").get_data(as_text=True)
    assert 'formaction="/accounts/password/reset/"' in login_page
    assert ">Forgot password?</button>" in login_page
    response = person.client.post(
        "/accounts/password/reset/",
        data={
            "csrf_token": csrf_from(login_page),
            "identifier": "alice",
            "password": "half typed",
            "forgot": "1",
        },
    )
    assert response.status_code == 302 and response.location == "/accounts/password/reset/"
    assert "half typed" not in response.location and "?" not in response.location
    page = person.client.get(response.location).get_data(as_text=True)
    assert "Trouble logging in?" in page
    assert 'name="identifier"' in page and 'value="alice"' in page
    assert ">Use a backup code</button>" in page


def test_the_code_page_needs_a_name_first(person):
    response = person.client.get(CODE_PAGE)
    assert response.status_code == 302 and response.location == "/accounts/password/reset/"
    response = person.submit(
        "/accounts/password/reset/", {"identifier": "", "use_backup_code": "1"}
    )
    assert response.location == "/accounts/password/reset/"
    assert "Enter your username" in person.client.get(response.location).get_data(as_text=True)


def test_one_code_gets_you_back_in_and_asks_for_a_new_password(app, person, user, user_codes):
    """Checklist 22/34: told which code and how many are left; recorded; new password first."""
    response = person.start_recovery("alice")
    assert response.location == CODE_PAGE
    page = person.client.get(CODE_PAGE).get_data(as_text=True)
    assert "Backup code" in page and ">Submit</button>" in page and "alice" in page
    code = user_codes[2]
    response = person.enter_code(f"{code[:4]} {code[4:]}")
    assert response.status_code == 302 and response.location == "/accounts/password/new/"
    page = person.client.get(response.location).get_data(as_text=True)
    assert "You used backup code #3. 9 codes left." in page
    assert "Create a new password" in page
    # Nothing else until the new password is set.
    for url in ("/", "/settings/", "/alice/", "/settings/security/two-factor/backup-codes/"):
        response = person.client.get(url)
        assert response.status_code == 302 and response.location == "/accounts/password/new/"
    response = person.submit("/accounts/password/new/", {"password": NEW, "confirm": NEW})
    assert response.status_code == 302 and response.location == "/"
    assert person.client.get("/settings/").status_code == 200
    person.logout()
    assert "incorrect" in person.login("alice", PASSWORD).get_data(as_text=True)
    assert person.login("alice", NEW).status_code == 302
    with app.app_context():
        kinds = db.session.scalars(select(SecurityEvent.kind)).all()
    assert {"backup_code_used", "recovered_with_backup_code", "password_changed"} <= set(kinds)


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("short", "short", "Use at least 8 characters"),
        ("password123", "password123", "too common"),
        (NEW, NEW + "x", "do not match"),
    ],
)
def test_the_new_password_follows_the_policy(
    app, person, user, user_codes, password, confirm, message
):
    """Checklist 36."""
    person.start_recovery("alice")
    person.enter_code(user_codes[0])
    response = person.submit("/accounts/password/new/", {"password": password, "confirm": confirm})
    assert message in response.get_data(as_text=True)
    assert person.client.get("/").location == "/accounts/password/new/"


def test_recovery_ends_every_other_session(app, person, user, user_codes):
    """Checklist 37."""
    laptop = Person(app.test_client())
    laptop.login()
    assert laptop.client.get("/settings/").status_code == 200
    person.start_recovery("alice")
    person.enter_code(user_codes[0])
    assert laptop.client.get("/settings/").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(UserSession.must_change_password)) is True
        assert len(db.session.scalars(select(UserSession)).all()) == 1


def test_a_used_code_is_refused_the_second_time(app, person, user, user_codes):
    person.start_recovery("alice")
    person.enter_code(user_codes[0])
    person.submit("/accounts/password/new/", {"password": NEW, "confirm": NEW})
    person.logout()
    person.start_recovery("alice")
    response = person.enter_code(user_codes[0])
    assert response.status_code == 200 and FAILED in response.get_data(as_text=True)


def test_another_accounts_code_is_refused_and_stays_valid(
    app, person, user, other_user, user_codes
):
    bobs = give_codes(app, other_user)
    person.start_recovery("alice")
    response = person.enter_code(bobs[0])
    assert FAILED in response.get_data(as_text=True)
    with app.app_context():
        assert (
            db.session.scalar(
                select(BackupCode.used_at).where(
                    BackupCode.user_id == other_user, BackupCode.number == 1
                )
            )
            is None
        )
    bob = Person(app.test_client())
    bob.start_recovery("bob")
    assert bob.enter_code(bobs[0]).location == "/accounts/password/new/"


def test_a_code_from_a_replaced_set_is_refused(app, person, user, user_codes):
    newer = give_codes(app, user)
    stale = next(code for code in user_codes if code not in newer)
    person.start_recovery("alice")
    assert FAILED in person.enter_code(stale).get_data(as_text=True)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "Enter a backup code."),
        ("abcd efgh", "A backup code is 8 digits"),
        ("１２３４５６７８", "A backup code is 8 digits"),
        ("1234567", "A backup code is 8 digits"),
        ("123456789", "A backup code is 8 digits"),
        ("1" * 5000, "That is too long"),
    ],
)
def test_wrong_shapes_get_a_message_and_are_not_counted(
    app, person, user, user_codes, code, message
):
    person.start_recovery("alice")
    before = snapshot(app)
    response = person.enter_code(code)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_a_megabyte_field_is_a_clear_413_and_changes_nothing(app, person, user, user_codes):
    person.start_recovery("alice")
    before = snapshot(app)
    response = person.enter_code("1" * 1_000_000)
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True)
    assert snapshot(app) == before


def _response_for(app, identifier: str, code: str) -> tuple[int, str, int]:
    person = Person(app.test_client())
    person.start_recovery(identifier)
    with mock.patch.object(bcrypt, "hashpw", wraps=bcrypt.hashpw) as hashpw:
        response = person.enter_code(code)
    body = response.get_data(as_text=True)
    body = body.replace(csrf_from(body), "TOKEN").replace(identifier, "NAME")
    return response.status_code, body, hashpw.call_count


def test_unknown_user_user_without_codes_and_wrong_code_look_the_same(
    app, user, other_user, user_codes
):
    """Checklist 32/33: same status and body (CSRF token aside), same bcrypt work."""
    wrong = "00000000" if "00000000" not in user_codes else "99999999"
    unknown = _response_for(app, "nobody", wrong)
    no_codes = _response_for(app, "bob", wrong)
    wrong_code = _response_for(app, "alice", wrong)
    assert unknown == no_codes == wrong_code
    status, body, hashes = unknown
    assert status == 200 and FAILED in body and hashes == 1


def test_failures_are_counted_on_the_account(app, person, user, user_codes):
    person.start_recovery("alice")
    person.enter_code("00000001")
    person.enter_code("00000002")
    with app.app_context():
        counter = db.session.get(AttemptCounter, f"user:{user}")
        kinds = db.session.scalars(select(SecurityEvent.kind)).all()
    assert counter.failures == 2
    assert kinds.count("backup_code_failed") == 2


def test_recovery_page_sends_no_referrer(person):
    response = person.client.get("/accounts/password/reset/")
    assert response.headers["Referrer-Policy"] == "no-referrer"
