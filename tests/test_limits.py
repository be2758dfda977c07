"""The per-account failure counter and the per-IP limits, attacked the way peers were broken."""

from __future__ import annotations

import re
from unittest import mock

import bcrypt
import pytest
from sqlalchemy import select

from extensions import db
from models import AttemptCounter, BackupCode, SecurityEvent
from security.attempts import Limits, unknown_name_key
from tests.helpers import PASSWORD, Person, count, csrf_from, make_user, wrong_code

THROTTLED = "Too many failed attempts"
CODE_PAGE = "/accounts/password/reset/backup-code/"


def failed_events(app) -> int:
    return count(app, SecurityEvent, SecurityEvent.kind == "backup_code_failed")


def used_codes(app) -> int:
    return count(app, BackupCode, BackupCode.used_at.is_not(None))


def test_delays_grow_and_stop_at_the_cap():
    limits = Limits(free_failures=5, max_delay_seconds=900, max_consecutive_failures=100)
    assert [limits.delay_after(n) for n in range(1, 10)] == [0, 0, 0, 0, 1, 2, 4, 8, 16]
    assert limits.delay_after(40) == 900


def test_a_wrong_code_1000_times(app, person, user, user_codes, frozen_clock):
    """Checklist 23/78: after 5 wrong codes the rest are refused without any hashing."""
    person.start_recovery("alice")
    messages = []
    with mock.patch.object(bcrypt, "hashpw", wraps=bcrypt.hashpw) as hashpw:
        for index in range(1000):
            body = person.enter_code(wrong_code(user_codes, index)).get_data(as_text=True)
            messages.append(THROTTLED in body)
    assert messages[:5] == [False] * 5
    assert all(messages[5:])
    assert hashpw.call_count == 5
    assert failed_events(app) == 5
    # A throttled correct code is refused and not consumed.
    body = person.enter_code(user_codes[0]).get_data(as_text=True)
    assert THROTTLED in body and "Try again in 1 s" in body
    assert used_codes(app) == 0


def test_back_off_lets_the_owner_in_after_waiting(app, person, user, user_codes, frozen_clock):
    person.start_recovery("alice")
    for index in range(5):
        person.enter_code(wrong_code(user_codes, index))
    assert THROTTLED in person.enter_code(user_codes[0]).get_data(as_text=True)
    frozen_clock(2)
    response = person.enter_code(user_codes[0])
    assert response.location == "/accounts/password/new/"
    page = person.client.get(response.location).get_data(as_text=True)
    # The owner's own mistakes of the last minutes, in this browser: not "attempts to get into
    # your account" (tests/test_failure_reports.py).
    assert "failed attempt" not in page


def seed_counter(app, user_id: int, **values) -> None:
    """The account's counter of untrusted clients, and the counter of the typed name "alice",
    as strangers typing "alice" leave them."""
    with app.app_context():
        db.session.add(AttemptCounter(key=f"user:{user_id}", **values))
        db.session.add(AttemptCounter(key=unknown_name_key("alice"), **values))
        db.session.commit()


def test_never_more_than_100_consecutive_wrong_codes(app, user, user_codes, frozen_clock):
    """NIST 5.2.2: code entry closes at 100 for browsers the account has not signed in with,
    until the owner logs in with the password."""
    seed_counter(app, user, failures=99, code_failures=99)
    person = Person(app.test_client())
    person.client.environ_base["REMOTE_ADDR"] = "203.0.113.66"
    person.start_recovery("alice")
    assert THROTTLED not in person.enter_code("00000000").get_data(as_text=True)
    frozen_clock(10 * 24 * 3600)
    body = person.enter_code(user_codes[0]).get_data(as_text=True)
    assert "Too many wrong codes from browsers this account has not signed in with" in body
    assert used_codes(app) == 0
    # Checklist 29: the owner's ordinary log-in still works and reopens the code entry.
    owner = Person(app.test_client())
    response = owner.login("alice", PASSWORD)
    assert response.status_code == 302
    assert "There were 100 failed attempts" in owner.client.get("/").get_data(as_text=True)
    person.start_recovery("alice")
    assert person.enter_code(user_codes[0]).location == "/accounts/password/new/"


def test_never_more_than_100_consecutive_wrong_passwords(app, user, user_codes, frozen_clock):
    """The password closes at 100 too, but cannot lock the owner out: a backup code opens it."""
    seed_counter(app, user, failures=100, password_failures=100)
    owner = Person(app.test_client())
    frozen_clock(10 * 24 * 3600)
    body = owner.login("alice", PASSWORD).get_data(as_text=True)
    assert "Too many failed attempts with the password" in body and "use a backup code" in body
    owner.start_recovery("alice")
    assert owner.enter_code(user_codes[0]).location == "/accounts/password/new/"
    new = "a brand new passphrase"
    owner.submit("/accounts/password/new/", {"password": new, "confirm": new})
    owner.logout()
    assert owner.login("alice", new).status_code == 302


def test_an_operator_can_reopen_an_account(app, user, runner, frozen_clock):
    seed_counter(app, user, failures=200, password_failures=100, code_failures=100)
    result = runner.invoke(args=["unlock-account", "ALICE"])
    assert result.exit_code == 0 and "alice" in result.output
    assert Person(app.test_client()).login("alice", PASSWORD).status_code == 302
    missing = runner.invoke(args=["unlock-account", "nobody"])
    assert missing.exit_code != 0 and "No account" in missing.output


def test_a_fresh_client_for_every_guess_still_counts(app, user, user_codes, frozen_clock):
    """Checklist 24: restarting the whole flow with new cookies does not reset the counter."""
    results = []
    for index in range(8):
        attacker = Person(app.test_client())
        attacker.start_recovery("alice")
        results.append(
            THROTTLED in attacker.enter_code(wrong_code(user_codes, index)).get_data(as_text=True)
        )
    assert results == [False] * 5 + [True] * 3


@pytest.mark.parametrize("spelling", ["Alice", "alice ", " ALICE", "alice@example.com"])
def test_every_spelling_of_the_name_shares_one_counter(
    app, user, user_codes, frozen_clock, spelling
):
    """Checklist 28: every name of the account counts on its one counter; after 5 failures the
    next code is not evaluated, whichever spelling. Only a spelling of the same typed name shows
    the wait; another name of the account (its email) shows the wrong-code page, exactly as an
    unknown email would, so aliases are not linked."""
    for index in range(5):
        attacker = Person(app.test_client())
        attacker.start_recovery("alice" if index % 2 else spelling)
        attacker.enter_code(wrong_code(user_codes, index))
    attacker = Person(app.test_client())
    attacker.start_recovery(spelling)
    with mock.patch.object(bcrypt, "hashpw", wraps=bcrypt.hashpw) as hashpw:
        body = attacker.enter_code(user_codes[0]).get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(BackupCode.used_at).where(BackupCode.number == 1)) is None
    if "@" in spelling:
        # The page and the work of a wrong code: one derivation, against a dummy salt.
        assert THROTTLED not in body and "That code did not work" in body
        assert hashpw.call_count == 1
    else:
        assert THROTTLED in body and hashpw.call_count == 0


def test_a_throttled_alias_looks_like_an_unknown_name(app, user, frozen_clock):
    """Checklist 32/40, the alias probe: after 5 wrong passwords on the username, the account's
    email and an
    unknown email of the same shape get the same page."""
    attacker = Person(app.test_client())
    for n in range(5):
        attacker.login("alice", f"wrong {n}")
    pages, work = [], []
    for email in ("alice@example.com", "nobody@example.com"):
        with mock.patch.object(bcrypt, "checkpw", wraps=bcrypt.checkpw) as checkpw:
            body = Person(app.test_client()).login(email, "a guess").get_data(as_text=True)
        pages.append(re.sub(r'value="[^"]*"', "", body))
        work.append(checkpw.call_count)
    assert pages[0] == pages[1]
    assert work == [1, 1]  # the same hashing work: no timing tells them apart
    assert "The username or password is incorrect" in pages[0] and THROTTLED not in pages[0]


def test_unknown_names_are_throttled_the_same_way(app, frozen_clock):
    """No enumeration through throttling: a name without an account trips at the same count."""
    attacker = Person(app.test_client())
    attacker.start_recovery("nobody")
    bodies = [attacker.enter_code(f"{index:08d}").get_data(as_text=True) for index in range(6)]
    assert [THROTTLED in body for body in bodies] == [False] * 5 + [True]


def test_forged_forwarding_headers_change_nothing(app, user, user_codes, frozen_clock):
    """Checklist 25."""
    results = []
    for index in range(7):
        attacker = Person(app.test_client())
        attacker.start_recovery("alice")
        forged = f"10.0.0.{index}"
        body = attacker.enter_code(
            wrong_code(user_codes, index),
            headers={"X-Forwarded-For": forged, "X-Real-IP": forged, "Forwarded": f"for={forged}"},
        ).get_data(as_text=True)
        results.append(THROTTLED in body)
    assert results == [False] * 5 + [True] * 2


def test_success_on_another_account_does_not_clear_failures(
    app, user, other_user, user_codes, frozen_clock
):
    """Checklist 26."""
    attacker = Person(app.test_client())
    attacker.start_recovery("alice")
    for index in range(4):
        attacker.enter_code(wrong_code(user_codes, index))
    assert Person(app.test_client()).login("bob", "bob's own long password").status_code == 302
    attacker.enter_code(wrong_code(user_codes, 4))
    assert THROTTLED in attacker.enter_code(wrong_code(user_codes, 5)).get_data(as_text=True)


def test_code_guessing_never_blocks_the_password_log_in(app, user, user_codes, frozen_clock):
    """Checklist 29: the victim logs in with the password and is told about the attempts."""
    attacker = Person(app.test_client())
    attacker.client.environ_base["REMOTE_ADDR"] = "203.0.113.66"
    attacker.start_recovery("alice")
    for index in range(30):
        attacker.enter_code(wrong_code(user_codes, index))
    owner = Person(app.test_client())
    assert owner.login("alice", PASSWORD).status_code == 302
    assert "There were 5 failed attempts" in owner.client.get("/").get_data(as_text=True)


def test_wrong_passwords_are_throttled_before_bcrypt(app, user, frozen_clock):
    """Checklist 30/78."""
    attacker = Person(app.test_client())
    with mock.patch.object(bcrypt, "checkpw", wraps=bcrypt.checkpw) as checkpw:
        bodies = [
            attacker.login("alice", f"guess number {n}").get_data(as_text=True) for n in range(20)
        ]
    assert [THROTTLED in body for body in bodies] == [False] * 5 + [True] * 15
    assert checkpw.call_count == 5
    # Each way in waits on its own failures: password guesses never delay code entry.
    attacker.start_recovery("alice")
    assert THROTTLED not in attacker.enter_code("12345678").get_data(as_text=True)


def test_confirm_password_shares_the_counter(app, user, frozen_clock):
    """Checklist 5."""
    owner = Person(app.test_client())
    owner.login()
    page = "/settings/security/two-factor/backup-codes/confirm/"
    bodies = [
        owner.submit(page, {"password": f"wrong {n}"}).get_data(as_text=True) for n in range(7)
    ]
    assert [THROTTLED in body for body in bodies] == [False] * 5 + [True] * 2


@pytest.fixture
def limited_app(app_factory):
    return app_factory("limited.db", RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")


def test_per_ip_limit_on_the_log_in_form(limited_app):
    """Checklist 30/31: one address spraying many names is stopped with a 429 page."""
    attacker = Person(limited_app.test_client())
    statuses = [attacker.login(f"user{n}", "some password").status_code for n in range(35)]
    assert statuses[:30] == [200] * 30
    assert statuses[30:] == [429] * 5
    assert "Too many requests" in attacker.login("user99", "x").get_data(as_text=True)


def test_per_ip_limit_ignores_forged_forwarding_headers(limited_app):
    attacker = Person(limited_app.test_client())
    statuses = [
        attacker.submit(
            "/accounts/signup/",
            {"username": f"spam{n}", "password": "short"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        ).status_code
        for n in range(22)
    ]
    assert statuses[:20] == [200] * 20 and statuses[20:] == [429, 429]


# Every other form that checks a secret, with its per-address limit per minute.
LIMITED_FORMS = [
    ("/accounts/password/reset/", 20, False),
    ("/accounts/password/reset/backup-code/", 20, False),
    ("/accounts/two-factor/", 20, False),
    ("/accounts/two-factor/backup-code/", 20, False),
    ("/settings/security/two-factor/backup-codes/confirm/", 10, True),
    ("/settings/security/two-factor/backup-codes/check/", 10, True),
    ("/settings/security/password/", 10, True),
    ("/settings/security/two-factor/app/setup/", 10, True),
    ("/settings/security/two-factor/app/off/", 10, True),
    ("/settings/security/secure/", 10, True),
]


@pytest.mark.parametrize(("path", "limit", "signed_in"), LIMITED_FORMS)
def test_per_ip_limit_on_every_form_that_checks_a_secret(limited_app, path, limit, signed_in):
    """Checklist 31: each of these forms answers 429 after its per-address limit in a minute,
    whatever was sent; the page before the limit is the form's own answer, not a 429."""
    person = Person(limited_app.test_client())
    if signed_in:
        make_user(limited_app)
        assert person.login().status_code == 302
    # One CSRF token serves every form of the session.
    token_page = "/settings/" if signed_in else "/accounts/login/"
    token = csrf_from(person.client.get(token_page).get_data(as_text=True))
    statuses = [
        person.client.post(path, data={"csrf_token": token, "code": "1"}).status_code
        for _ in range(limit + 2)
    ]
    assert 429 not in statuses[:limit], statuses
    assert statuses[limit:] == [429, 429]
    assert "Too many requests" in person.client.post(path, data={"csrf_token": token}).get_data(
        as_text=True
    )
