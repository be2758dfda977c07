"""A stolen session is not a stolen account: signing in ends the browser's previous server-side
session, whatever account it was, so a copy of the old cookie dies with it. And the "Forgot
password?" code form does a real account's database work for a name without one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from flask import Flask
from sqlalchemy import event, select

from blueprints.context import app_context_of
from extensions import db
from models import AttemptCounter, SecurityEvent, UserSession
from security.context import Client
from security.outcomes import NeedsSecondFactor, SignedIn
from security.signing_in import log_in, recover_with_backup_code, sign_up
from tests.helpers import PASSWORD, Person, count, give_codes, snapshot, turn_on_app

BOB_PASSWORD = "bob's own long password"  # nosec B105: a test account's password


def copy_of_cookie(person: Person) -> str:
    return person.client.get_cookie("session").value


def replayed(app: Flask, cookie: str):
    """The copied cookie, from a fresh client, on a signed-in page."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief.get("/settings/security/")


def assert_logged_out(app: Flask, cookie: str) -> None:
    response = replayed(app, cookie)
    assert response.status_code == 302
    assert response.location.startswith("/accounts/login/")


def sessions_of(app: Flask, user_id: int) -> int:
    return count(app, UserSession, UserSession.user_id == user_id)


def logged_out_events(app: Flask, user_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(SecurityEvent.detail).where(
                    SecurityEvent.user_id == user_id, SecurityEvent.kind == "logged_out"
                )
            )
        )


@pytest.fixture
def alice_signed_in(app, person, user) -> str:
    """Alice signed in in `person`'s browser; returns a copy of its cookie, which works."""
    assert person.login().status_code == 302
    cookie = copy_of_cookie(person)
    assert replayed(app, cookie).status_code == 200
    return cookie


# --- over HTTP: "Forgot password?" in a browser signed in to another account -----------------


def test_recovering_as_another_account_ends_the_old_session(
    app, person, user, alice_signed_in, other_user
):
    bobs_codes = give_codes(app, other_user)
    person.start_recovery("bob")
    response = person.enter_code(bobs_codes[0])
    assert response.status_code == 302 and response.location == "/accounts/password/new/"
    assert_logged_out(app, alice_signed_in)
    assert sessions_of(app, user) == 0
    assert sessions_of(app, other_user) == 1
    assert logged_out_events(app, user) == ["another account signed in on that browser"]
    # The browser itself is Bob's now.
    assert person.client.get("/accounts/password/new/").status_code == 200


def test_recovering_with_an_app_ends_the_old_session_at_the_two_factor_step(
    app, person, user, alice_signed_in, other_user, frozen_clock
):
    """The cookie keeps only the half-finished recovery: the old session ends right then."""
    bobs_codes = give_codes(app, other_user)
    turn_on_app(app, other_user)
    person.start_recovery("bob")
    response = person.enter_code(bobs_codes[0])
    assert response.status_code == 302 and response.location == "/accounts/two-factor/"
    assert_logged_out(app, alice_signed_in)
    assert sessions_of(app, user) == 0
    assert sessions_of(app, other_user) == 0
    assert logged_out_events(app, user) == ["another account signed in on that browser"]


def test_a_wrong_code_keeps_the_browsers_session(app, person, user, alice_signed_in, other_user):
    """Nothing signed in, so nothing is handed over: the browser is still Alice's."""
    bobs_codes = give_codes(app, other_user)
    person.start_recovery("bob")
    wrong = next(c for c in ("11112222", "33334444") if c not in bobs_codes)
    assert person.enter_code(wrong).status_code == 200
    assert replayed(app, alice_signed_in).status_code == 200
    assert sessions_of(app, user) == 1
    assert logged_out_events(app, user) == []


@pytest.mark.parametrize(
    ("page", "form"),
    [
        ("/accounts/login/", {"identifier": "bob", "password": BOB_PASSWORD}),
        ("/accounts/signup/", {"username": "carol", "password": "carol's own passphrase"}),
    ],
)
def test_log_in_and_sign_up_pages_send_a_signed_in_browser_home(
    app, person, user, alice_signed_in, other_user, page, form
):
    """Over HTTP a signed-in browser never reaches log-in or sign-up (it is sent home), so its
    cookie is never replaced there and its session stays the one it has."""
    before = snapshot(app)
    response = person.submit("/settings/", form, action=page)
    assert response.status_code == 302 and response.location == "/"
    assert snapshot(app) == before
    assert replayed(app, alice_signed_in).status_code == 200


# --- the use cases themselves: whatever way in, the browser's previous session ends ----------


def alices_token(person: Person) -> str:
    with person.client.session_transaction() as cookie:
        return cookie["_user_id"]


def client_of(person: Person) -> Client:
    return Client.of("203.0.113.9", "Firefox", session_token=alices_token(person))


def test_logging_in_as_another_account_ends_the_old_session(
    app, person, user, alice_signed_in, other_user
):
    with app.app_context():
        ctx = replace(app_context_of(app), client=client_of(person))
        assert isinstance(log_in(ctx, "bob", BOB_PASSWORD), SignedIn)
    assert_logged_out(app, alice_signed_in)
    assert sessions_of(app, user) == 0
    assert sessions_of(app, other_user) == 1
    assert logged_out_events(app, user) == ["another account signed in on that browser"]


def test_logging_in_with_an_app_ends_the_old_session_at_the_two_factor_step(
    app, person, user, alice_signed_in, other_user, frozen_clock
):
    turn_on_app(app, other_user)
    with app.app_context():
        ctx = replace(app_context_of(app), client=client_of(person))
        assert isinstance(log_in(ctx, "bob", BOB_PASSWORD), NeedsSecondFactor)
    assert_logged_out(app, alice_signed_in)
    assert sessions_of(app, user) == 0


def test_signing_up_ends_the_old_session(app, person, user, alice_signed_in):
    with app.app_context():
        ctx = replace(app_context_of(app), client=client_of(person))
        signed_in = sign_up(ctx, "carol", "carol's own passphrase", None, None)
        assert isinstance(signed_in, SignedIn)
        carol = signed_in.session.user.id
    assert_logged_out(app, alice_signed_in)
    assert sessions_of(app, user) == 0
    assert sessions_of(app, carol) == 1
    assert logged_out_events(app, user) == ["another account signed in on that browser"]


def test_signing_in_again_to_the_same_account_ends_the_old_session_quietly(
    app, person, user, alice_signed_in
):
    """Same account: the old row ends too, without a "logged out" event."""
    with app.app_context():
        ctx = replace(app_context_of(app), client=client_of(person))
        assert isinstance(log_in(ctx, "alice", PASSWORD), SignedIn)
    assert_logged_out(app, alice_signed_in)
    assert sessions_of(app, user) == 1
    assert logged_out_events(app, user) == []


def test_a_token_that_names_no_session_ends_no_other(
    app, person, user, alice_signed_in, other_user
):
    with app.app_context():
        ctx = replace(app_context_of(app), client=Client.of("", "", session_token="x" * 43))
        assert isinstance(log_in(ctx, "bob", BOB_PASSWORD), SignedIn)
    assert replayed(app, alice_signed_in).status_code == 200
    assert sessions_of(app, user) == 1 and sessions_of(app, other_user) == 1
    assert logged_out_events(app, user) == []


# --- "Forgot password?": a name without an account does a real account's database work ------


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The kind of every statement sent (a write is any INSERT, UPDATE or DELETE), and every
    COMMIT and ROLLBACK, in order."""
    seen: list[str] = []

    def statement(conn, cursor, text, parameters, context, executemany):
        verb = text.split(None, 1)[0].upper()
        seen.append("write" if verb in ("INSERT", "UPDATE", "DELETE") else verb)

    with app.app_context():
        engine = db.engine
    hooks = [
        ("before_cursor_execute", statement),
        ("commit", lambda conn: seen.append("COMMIT")),
        ("rollback", lambda conn: seen.append("ROLLBACK")),
    ]
    for name, hook in hooks:
        event.listen(engine, name, hook)
    try:
        yield seen
    finally:
        for name, hook in hooks:
            event.remove(engine, name, hook)


WRONG = "12345678"


def wrong_code_work(app: Flask, identifier: str, client: Client) -> list[list[str]]:
    """The statements of a wrong code for `identifier`: its first try, then a later one."""
    tries = []
    with app.app_context():
        ctx = replace(app_context_of(app), client=client)
        for _ in range(2):
            with statements(app) as seen:
                recover_with_backup_code(ctx, identifier, WRONG)
            tries.append(seen)
    return tries


@pytest.mark.parametrize("device_tokens", [(), ("a device token of another account",)])
def test_an_unknown_name_does_the_database_work_of_a_real_account(app, user, device_tokens):
    """Checklist 33: same statements, reads and writes, commits and rollbacks in the same
    order, on the first try and after it: a wrong code for a real account (its failure event
    inserted) and for a name without one (its stand-in counter written instead)."""
    codes = give_codes(app, user)
    assert WRONG not in codes
    client = Client.of("203.0.113.9", "Firefox", device_tokens)
    real = wrong_code_work(app, "alice", client)
    unknown = wrong_code_work(app, "nobody", client)
    assert unknown == real
    assert real[0] != real[1]  # the first try inserts the counters, so both shapes are compared


def test_with_an_app_on_a_wrong_code_sends_as_many_statements(app, user, frozen_clock):
    """The app's path checks the code without spending it: a SELECT where the other path has
    its conditional UPDATE, and otherwise the same work."""
    give_codes(app, user)
    turn_on_app(app, user)
    client = Client.of("203.0.113.9", "Firefox")
    with_app = wrong_code_work(app, "alice", client)
    unknown = wrong_code_work(app, "nobody", client)
    for app_try, unknown_try in zip(with_app, unknown, strict=True):
        assert len(app_try) == len(unknown_try)
        assert [s for s in app_try if s in ("COMMIT", "ROLLBACK")] == [
            s for s in unknown_try if s in ("COMMIT", "ROLLBACK")
        ]


def test_the_unknown_names_work_changes_no_account(app, user, other_user):
    """Only counters of names without accounts are written; accounts, codes, sessions and events
    stay as they were."""
    give_codes(app, user)
    before = snapshot(app, ignore=("attempt_counters",))
    with app.app_context():
        ctx = replace(app_context_of(app), client=Client.of("203.0.113.9", "Firefox"))
        for _ in range(3):
            recover_with_backup_code(ctx, "nobody", WRONG)
        counter_keys = list(db.session.scalars(select(AttemptCounter.key)))
    assert snapshot(app, ignore=("attempt_counters",)) == before
    # The name's own counter and its stand-in, both forgotten by `prune` like any name's.
    assert len(counter_keys) == 2 and all(key.startswith("name:") for key in counter_keys)


def test_a_name_without_an_account_is_still_told_to_wait(app, person, frozen_clock):
    """After the free tries the name waits, as a real account's name does."""
    person.start_recovery("nobody")
    bodies = [person.enter_code(f"{n:08d}").get_data(as_text=True) for n in range(6)]
    assert all("That code did not work." in body for body in bodies[:5])
    assert "Too many failed attempts. Try again in 1 s." in bodies[5]
