"""Sign-up does not say whether an email or phone number has an account: a taken one answers
exactly as a fresh one, the new account is made without it, and the address's owner is mailed.
A taken username is still said (usernames are public names)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from unittest import mock

import pytest
from flask import Flask
from sqlalchemy import select, update

from blueprints.context import app_context_of
from extensions import db
from models import SecurityEvent, User
from security.accounts import Holders, holders_of
from security.notices import Outbox
from security.outcomes import Reason, Refused, SignedIn
from security.signing_in import SIGN_UP_AGAIN, USERNAME_TAKEN, sign_up
from tests.helpers import PASSWORD, Person, make_user, snapshot, user_by_name
from tools.smtp import Inbox, smtp_server

EMAIL = "alice@example.com"
PHONE = "+15550100199"
SITE = "https://sparekey.example"
NEW_PASSWORD = "tangerine harbour lantern"  # nosec B105: a test account's password


def verify(app: Flask, email: str = EMAIL) -> None:
    with app.app_context():
        db.session.execute(
            update(User).where(User.email == email).values(email_verified_at=datetime(2026, 1, 1))
        )
        db.session.commit()


def signed_up(app: Flask, username: str, **extra):
    """A sign-up from a fresh browser: the response and the page it leads to."""
    person = Person(app.test_client())
    response = person.signup(username, NEW_PASSWORD, **extra)
    landing = person.client.get(response.location) if response.status_code == 302 else None
    return response, landing


def comparable(response, username: str) -> tuple:
    """Status, headers but the cookies and the request id (new for every request), and the
    body, with the new account's name (and its avatar) and the page's CSRF token blanked."""
    body = response.get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', body)
    if token:
        body = body.replace(token.group(1), "TOKEN")
    body = body.replace(username, "NAME")
    # The avatar: the name's initial, in a colour picked from the name.
    body = re.sub(
        r'<span class="avatar [^"]*" aria-hidden="true"[^>]*>[^<]*</span>', "AVATAR", body
    )
    headers = sorted(
        (k, v) for k, v in response.headers.items() if k not in ("Set-Cookie", "X-Request-ID")
    )
    return response.status_code, headers, body


def events_of(app: Flask, user_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(SecurityEvent.kind)
                .where(SecurityEvent.user_id == user_id)
                .order_by(SecurityEvent.id)
            )
        )


# --- the one thing still said: a taken username ------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"username": "alice"},
        {"username": "ALICE "},
        # Said for the username only, never for the email or phone beside it.
        {"username": "alice", "email": EMAIL, "phone": "+1 555 010 0199"},
        {"username": "alice", "email": "fresh@example.com"},
    ],
)
def test_a_taken_username_is_said_and_changes_nothing(app, person, user, fields):
    before = snapshot(app)
    response = person.submit("/accounts/signup/", {"password": NEW_PASSWORD, **fields})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "This username is taken. Try another." in body
    for word in ("Another account", "phone is taken", "email is taken", "Log in instead"):
        assert word not in body
    assert snapshot(app) == before


def test_the_use_case_refuses_a_taken_username_and_changes_nothing(app, user):
    """The form checks first; the use case holds the rule too (a sign-up racing another)."""
    before = snapshot(app)
    with app.app_context():
        outcome = sign_up(app_context_of(app), "alice", NEW_PASSWORD, None, None)
    assert outcome == Refused(Reason.TAKEN, USERNAME_TAKEN)
    assert snapshot(app) == before


# --- a taken email or phone: the answer of a fresh one -----------------------------------------


@pytest.mark.parametrize(
    "taken",
    [
        {"email": EMAIL},
        {"phone": "+1 (555) 010-0199"},
        {"email": "ALICE@example.com", "phone": PHONE},
    ],
)
def test_a_taken_email_or_phone_answers_exactly_as_a_fresh_one(app, user, taken):
    verify(app)
    fresh = {key: "fresh@example.com" if key == "email" else "+15550100777" for key in taken}
    fresh_response, fresh_landing = signed_up(app, "carol", **fresh)
    taken_response, taken_landing = signed_up(app, "norah", **taken)
    assert fresh_response.status_code == 302 and fresh_response.location == "/"
    assert comparable(taken_response, "norah") == comparable(fresh_response, "carol")
    # The page it leads to, with its "Welcome" flash, reads the same too.
    assert "Welcome to Sparekey, norah!" in taken_landing.get_data(as_text=True)
    assert comparable(taken_landing, "norah") == comparable(fresh_landing, "carol")
    # Both are signed in, with the same events.
    norah, carol = user_by_name(app, "norah"), user_by_name(app, "carol")
    assert events_of(app, norah.id) == events_of(app, carol.id) == ["signed_up", "logged_in"]


# What a sign-up adds: the account, its session, its events, this browser as its device.
IGNORED = ("users", "user_sessions", "security_events", "trusted_devices")


def test_the_new_account_is_made_without_the_taken_address(app, user):
    before = snapshot(app, ignore=IGNORED)
    alice_before = user_by_name(app, "alice")
    response, _ = signed_up(app, "norah", email=EMAIL, phone="+1 555 010 0199")
    assert response.status_code == 302
    norah = user_by_name(app, "norah")
    assert norah.email is None and norah.phone is None
    alice = user_by_name(app, "alice")
    assert (alice.email, alice.phone, alice.email_verified_at, alice.password_hash) == (
        alice_before.email,
        alice_before.phone,
        alice_before.email_verified_at,
        alice_before.password_hash,
    )
    assert snapshot(app, ignore=IGNORED) == before
    # The address still names Alice's account, and only with Alice's password.
    stranger = Person(app.test_client())
    assert "incorrect" in stranger.login(EMAIL, NEW_PASSWORD).get_data(as_text=True)
    assert stranger.login(EMAIL, PASSWORD).status_code == 302
    assert "Hi, alice" in stranger.client.get("/").get_data(as_text=True)


def test_a_fresh_address_is_kept(app, user):
    signed_up(app, "carol", email="Carol@Example.com", phone="+1 555 010 0777")
    carol = user_by_name(app, "carol")
    assert carol.email == "carol@example.com" and carol.phone == "+15550100777"


# --- the owner hears of it ---------------------------------------------------------------------


@pytest.fixture
def mailed(app_factory):
    """An app that sends over SMTP to a test server; yields (app, inbox)."""
    with smtp_server() as (inbox, port):
        app = app_factory("mail.db", MAIL_SERVER="127.0.0.1", MAIL_PORT=port, SITE_URL=SITE)
        yield app, inbox


@pytest.mark.parametrize(
    ("taken", "named"),
    [
        ({"email": EMAIL}, "email address"),
        ({"phone": "+1 555 010 0199"}, "phone number"),
        ({"email": EMAIL, "phone": PHONE}, "email address and phone number"),
    ],
)
def test_the_owner_of_a_verified_address_is_mailed_once(mailed, taken, named):
    app, inbox = mailed
    make_user(app, email=EMAIL, phone=PHONE)
    verify(app)
    response, _ = signed_up(app, "norah", **taken)
    assert response.status_code == 302
    [message] = inbox.messages
    assert str(message["To"]) == EMAIL
    assert message["Subject"] == "Someone tried to sign up with your address on Sparekey"
    body = Inbox.body(message)
    assert f"Someone tried to create a new Sparekey account with your {named}." in body
    assert f"Site: {SITE}" in body and "When: " in body and "Device: " in body
    assert "Address: 127.0.0.1" in body
    # Nothing of the new account: not its password, not its name.
    assert NEW_PASSWORD not in body and "norah" not in body


def test_an_unverified_owner_is_not_mailed_and_the_answer_is_the_same(mailed):
    """The rule of every notice: mail goes only to a verified address (the one who typed an
    address at sign-up may not own it)."""
    app, inbox = mailed
    make_user(app, email=EMAIL)
    fresh_response, _ = signed_up(app, "carol", email="fresh@example.com")
    taken_response, _ = signed_up(app, "norah", email=EMAIL)
    assert comparable(taken_response, "norah") == comparable(fresh_response, "carol")
    assert inbox.messages == []


def test_a_fresh_address_mails_nobody(mailed):
    app, inbox = mailed
    make_user(app, email=EMAIL)
    verify(app)
    signed_up(app, "carol", email="fresh@example.com", phone="+15550100777")
    assert inbox.messages == []


# --- a sign-up racing another for the same address ---------------------------------------------


class Letters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject))


def test_an_address_taken_meanwhile_is_left_out_on_the_second_look(app, user):
    verify(app)
    letters = Letters()
    # The first look finds no holder (the address is taken just after it); the second is real.
    first = iter([Holders(username_taken=False, email_owner=None, phone_owner=None)])
    with (
        app.app_context(),
        mock.patch(
            "security.signing_in.holders_of",
            side_effect=lambda *args: next(first, None) or holders_of(*args),
        ),
    ):
        ctx = replace(app_context_of(app), outbox=Outbox(mailer=letters, site=SITE))
        outcome = sign_up(ctx, "norah", NEW_PASSWORD, EMAIL, None)
    assert isinstance(outcome, SignedIn)
    assert user_by_name(app, "norah").email is None
    assert letters.sent == [(EMAIL, "Someone tried to sign up with your address on Sparekey")]


def test_a_sign_up_that_loses_twice_is_refused_and_changes_nothing(app, user):
    before = snapshot(app)
    nobody = Holders(username_taken=False, email_owner=None, phone_owner=None)
    with app.app_context(), mock.patch("security.signing_in.holders_of", return_value=nobody):
        outcome = sign_up(app_context_of(app), "norah", NEW_PASSWORD, EMAIL, None)
    assert outcome == Refused(Reason.TAKEN, SIGN_UP_AGAIN)
    assert snapshot(app) == before
