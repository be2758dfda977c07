"""Mail to the owner, through a real SMTP server: a confirmed address gets a notice of every code
used, password change, app on or off, new codes in use and new device; never a secret in it."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from sqlalchemy import func, select

from extensions import db
from models import BackupCode, User, UserSession
from tests.helpers import PASSWORD, Person, device_counter, give_codes, make_user, snapshot
from tools.smtp import Inbox, smtp_server

EMAIL = "alice@example.com"
SITE = "https://sparekey.example"
LOGIN = "/accounts/login/"


@pytest.fixture
def mailed(app_factory):
    """An app that sends over SMTP to a test server; yields (app, inbox)."""
    with smtp_server() as (inbox, port):
        app = app_factory("mail.db", MAIL_SERVER="127.0.0.1", MAIL_PORT=port, SITE_URL=SITE)
        yield app, inbox


def confirm_address(person: Person, inbox: Inbox) -> None:
    person.submit("/settings/security/email/", {})
    link = re.search(
        r"https://sparekey\.example(/settings/security/email/verify/\S+)",
        Inbox.body(inbox.to(EMAIL)[-1]),
    )
    assert link, inbox.messages
    page = link.group(1)
    assert "Confirm this address" in person.client.get(page).get_data(as_text=True)
    person.submit(page, {})


def secrets_absent(inbox: Inbox, secrets: list[str]) -> None:
    for message in inbox.messages:
        text = str(message["Subject"]) + Inbox.body(message)
        for secret in secrets:
            assert secret not in text and f"{secret[:4]} {secret[4:]}" not in text


def test_an_address_gets_nothing_until_it_is_confirmed(mailed):
    app, inbox = mailed
    make_user(app, email=EMAIL)
    owner = Person(app.test_client())
    owner.login()
    owner.submit(
        "/settings/security/password/",
        {
            "current_password": PASSWORD,
            "password": "a new long passphrase",
            "confirm": "a new long passphrase",
        },
    )
    assert inbox.messages == []
    confirm_address(owner, inbox)
    [link_mail] = inbox.to(EMAIL)
    assert link_mail["Subject"] == "Confirm your email address for Sparekey"
    with app.app_context():
        assert db.session.scalar(select(User.email_verified_at)) is not None
    page = owner.client.get("/settings/security/email/").get_data(as_text=True)
    assert "Confirmed" in page


def test_a_link_for_another_account_or_a_forged_one_changes_nothing(mailed):
    app, inbox = mailed
    make_user(app, email=EMAIL)
    make_user(app, "bob", "bob's own long password", email="bob@example.com")
    alice = Person(app.test_client())
    alice.login()
    alice.submit("/settings/security/email/", {})
    link = re.search(r"(/settings/security/email/verify/\S+)", Inbox.body(inbox.messages[0]))[1]
    bob = Person(app.test_client())
    bob.login("bob", "bob's own long password")
    for who, page in ((bob, link), (alice, link[:-3] + "xyz")):
        response = who.submit(page, {}, follow_redirects=True)
        assert "That link is not valid" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(User.email_verified_at)).all() == [None, None]


def test_every_notice_reaches_the_owner_without_a_secret(mailed):
    """Checklist 38: code use, password change, new codes and new devices are mailed."""
    app, inbox = mailed
    make_user(app, email=EMAIL)
    owner = Person(app.test_client())
    owner.login()
    confirm_address(owner, inbox)
    codes = owner.get_codes()
    new_password = "a new long passphrase"
    owner.submit(
        "/settings/security/password/",
        {"current_password": PASSWORD, "password": new_password, "confirm": new_password},
    )
    new_codes = owner.get_codes(new_password)
    # A new device signs in, and a backup code is used on another.
    Person(app.test_client()).login("alice", new_password)
    stranger = Person(app.test_client())
    stranger.start_recovery("alice")
    stranger.enter_code(new_codes[0])
    subjects = [str(m["Subject"]) for m in inbox.to(EMAIL)]
    assert subjects == [
        "Confirm your email address for Sparekey",
        "New backup codes are in use on your Sparekey account",
        "Your Sparekey password was changed",
        "New backup codes are in use on your Sparekey account",
        "A new device signed in to your Sparekey account",
        "A new device signed in to your Sparekey account",
        "A backup code was used on your Sparekey account",
    ]
    used = Inbox.body(inbox.to(EMAIL)[-1])
    assert "(code #1, 9 left)" in used and f"Site: {SITE}" in used and "When: " in used
    assert "Device: " in used and "Address: 127.0.0.1" in used
    secrets_absent(inbox, [*codes, *new_codes, PASSWORD, new_password])


def test_turning_the_app_on_and_off_is_mailed(mailed):
    app, inbox = mailed
    make_user(app, email=EMAIL)
    give_codes(app, 1)
    owner = Person(app.test_client())
    owner.login()
    confirm_address(owner, inbox)
    app_page, setup = (
        "/settings/security/two-factor/app/",
        "/settings/security/two-factor/app/setup/",
    )
    owner.submit(app_page, {"start-submit": "1"}, action=setup)
    page = owner.client.get(setup).get_data(as_text=True)
    key = re.search(r'class="setup-key"[^>]*>([A-Z2-7 ]+)<', page)[1].replace(" ", "")
    code = pyotp.TOTP(key).now()
    owner.submit(setup, {"code": code, "password": PASSWORD, "submit": "1"})
    later = pyotp.TOTP(key).at(int(time.time()) + 30)
    owner.submit(
        app_page, {"off-password": PASSWORD, "off-factor": later}, action=app_page + "off/"
    )
    subjects = [str(m["Subject"]) for m in inbox.to(EMAIL)]
    assert subjects[1:] == [
        "An authentication app was turned on for your Sparekey account",
        "The authentication app of your Sparekey account was turned off",
    ]
    secrets_absent(inbox, [code, PASSWORD])
    assert key not in "".join(Inbox.body(m) for m in inbox.messages)


def test_changing_the_email_tells_the_old_address_which_can_undo_it(mailed):
    app, inbox = mailed
    make_user(app, email=EMAIL)
    owner = Person(app.test_client())
    owner.login()
    confirm_address(owner, inbox)
    page = "/settings/security/email/"
    before = snapshot(app, ignore=("attempt_counters", "security_events"))
    wrong = owner.submit(
        page, {"change-email": "new@example.com", "change-password": "wrong!", "change-submit": "1"}
    )
    assert "That password is not right" in wrong.get_data(as_text=True)
    assert snapshot(app, ignore=("attempt_counters", "security_events")) == before
    owner.submit(
        page,
        {"change-email": "New@Example.com", "change-password": PASSWORD, "change-submit": "1"},
    )
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.email == "new@example.com" and user.email_verified_at is None
    [told] = [m for m in inbox.to(EMAIL) if "changed" in str(m["Subject"])]
    assert "new@example.com" in Inbox.body(told)
    assert inbox.to("new@example.com")[-1]["Subject"] == "Confirm your email address for Sparekey"
    undo = re.search(r"https://sparekey\.example(/accounts/email/undo/\S+)", Inbox.body(told))[1]
    stranger = Person(app.test_client())
    assert "Undo the change" in stranger.client.get(undo).get_data(as_text=True)
    done = stranger.submit(undo, {}, follow_redirects=True).get_data(as_text=True)
    assert "Your old email address is back" in done
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.email == EMAIL and user.email_verified_at is not None
    assert owner.client.get("/settings/").status_code == 302  # every session ended
    for spelling in (undo, undo + "%C3%A9"):
        again = stranger.submit(spelling, {}, follow_redirects=True).get_data(as_text=True)
        assert "That link is not valid" in again


def test_an_address_of_another_account_is_refused_without_a_counted_failure(mailed):
    app, _ = mailed
    make_user(app, email=EMAIL)
    make_user(app, "bob", "bob's own long password", email="bob@example.com")
    owner = Person(app.test_client())
    owner.login()
    before = snapshot(app, ignore=("attempt_counters", "security_events"))
    form = {"change-email": "bob@example.com", "change-password": PASSWORD, "change-submit": "1"}
    body = owner.submit("/settings/security/email/", form).get_data(as_text=True)
    assert "Another account uses this email address." in body
    assert snapshot(app, ignore=("attempt_counters", "security_events")) == before
    assert device_counter(app).password_failures == 0


def test_the_unlock_button_mails_nobody_while_nothing_is_closed(mailed):
    """Anyone can press it for any name: the answer is the same, and no mail is sent unless a
    way in is closed for new browsers, so it cannot flood an owner."""
    app, inbox = mailed
    make_user(app, email=EMAIL)
    owner = Person(app.test_client())
    owner.login()
    confirm_address(owner, inbox)
    sent = len(inbox.messages)
    stranger = Person(app.test_client())
    for name in ("alice", EMAIL, "nobody"):
        response = stranger.submit(LOGIN, {"identifier": name}, action="/accounts/unlock/")
        page = stranger.client.get(response.location).get_data(as_text=True)
        assert "a link is on its way there" in page
    assert len(inbox.messages) == sent


def test_a_notice_mail_carries_a_secure_link_that_works_once_while_the_address_stands(mailed):
    """ "Wasn't you? Secure your account" from the mail: a stranger used a code; the owner's link
    ends every session (the stranger's too), voids every code and lets the owner choose a new
    password. It works once, and not at all once the address changed."""
    app, inbox = mailed
    make_user(app, email=EMAIL)
    codes = give_codes(app, 1)
    owner = Person(app.test_client())
    owner.login()
    confirm_address(owner, inbox)
    stranger = Person(app.test_client())
    stranger.start_recovery("alice")
    stranger.enter_code(codes[0])
    body = Inbox.body(inbox.to(EMAIL)[-1])
    assert "Wasn't you? Secure your account" in body
    link = re.search(r"https://sparekey\.example(/accounts/secure/\S+)", body)[1]
    follower = Person(app.test_client())
    assert "Secure my account" in follower.client.get(link).get_data(as_text=True)
    # The stranger is in, and must choose a new password first.
    assert stranger.client.get("/settings/").location == "/accounts/password/new/"
    response = follower.submit(link, {})
    assert response.location == "/accounts/password/new/"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BackupCode)) == 0
        rows = db.session.scalars(select(UserSession)).all()
        assert [row.must_change_password for row in rows] == [True]
    assert owner.client.get("/settings/").status_code == 302
    assert stranger.client.get("/settings/").status_code == 302
    again = Person(app.test_client())
    refused = again.submit(link, {})
    assert refused.location == "/accounts/login/"
    assert "already used" in again.client.get(LOGIN).get_data(as_text=True)


def test_a_secure_link_dies_when_the_address_changes(mailed):
    app, inbox = mailed
    user_id = make_user(app, email=EMAIL)
    give_codes(app, user_id)
    owner = Person(app.test_client())
    owner.login()
    confirm_address(owner, inbox)
    owner.submit(
        "/settings/security/password/",
        {
            "current_password": PASSWORD,
            "password": "a new long passphrase",
            "confirm": "a new long passphrase",
        },
    )
    link = re.search(r"(/accounts/secure/\S+)", Inbox.body(inbox.to(EMAIL)[-1]))[1]
    owner.submit(
        "/settings/security/email/",
        {
            "change-email": "new@example.com",
            "change-password": "a new long passphrase",
            "change-submit": "1",
        },
    )
    before = snapshot(app, ignore=("attempt_counters", "security_events"))
    follower = Person(app.test_client())
    assert follower.submit(link, {}).location == "/accounts/login/"
    assert "address changed" in follower.client.get(LOGIN).get_data(as_text=True)
    assert snapshot(app, ignore=("attempt_counters", "security_events")) == before
