"""What the owner is told at the next success ("There was 1 failed attempt ...") counts only the
checks answered with a wrong secret. A check is counted on the counter before it starts (so a
request killed mid-check still counts for the wait); one that never got its answer (the worker
killed, a database error) counts for the wait and nothing else. The person's own mistakes, typed
in the same browser in the ten minutes before the success, are not reported either."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta
from unittest import mock

import pyotp
import pytest
from sqlalchemy.exc import OperationalError

from blueprints.context import app_context_of
from extensions import db
from models import AttemptCounter
from security import signing_in
from security.accounts import find_user
from security.attempts import PASSWORD, account_key
from security.context import Client
from security.guard import Attempt, begin_attempt
from security.outcomes import SignedIn
from tests.helpers import PASSWORD as RIGHT_PASSWORD
from tests.helpers import T0, Person

THROTTLED = "Too many failed attempts. Try again in 1 s."
ONE = "There was 1 failed attempt to get into your account since it was last used."
TWO = "There were 2 failed attempts to get into your account since it was last used."
TWO_FACTOR = "/accounts/two-factor/"


def database_error(*_args, **_kwargs):
    raise OperationalError("SELECT 1", {}, Exception("the database went away mid-check"))


def counter(app, user_id: int) -> AttemptCounter:
    with app.app_context():
        row = db.session.get(AttemptCounter, account_key(user_id))
        db.session.expunge(row)
        return row


def stranger(app) -> Person:
    """Someone else, elsewhere: another address than the owner's test client."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "203.0.113.66"
    return Person(client)


def notices_after_signing_in(person: Person, password: str = RIGHT_PASSWORD) -> str:
    response = person.login(password=password)
    assert response.status_code == 302, response.get_data(as_text=True)
    return person.client.get(response.location).get_data(as_text=True)


@pytest.fixture
def unpropagated(app):
    """A request that raises answers the 500 page, as under gunicorn."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def test_a_check_that_never_got_its_answer_counts_for_the_wait_only(
    unpropagated, user, frozen_clock
):
    """Five log-ins stopped by a database error mid-check: the sixth waits like after five wrong
    passwords, and the success after the wait reports no failed attempt."""
    app = unpropagated
    person = Person(app.test_client())
    with mock.patch.object(signing_in, "verify_password", side_effect=database_error):
        statuses = [person.login(password="whatever was typed").status_code for _ in range(5)]
    assert statuses == [500] * 5
    row = counter(app, user)
    assert row.password_failures == 5 and row.failures == 0
    assert THROTTLED in person.login().get_data(as_text=True)
    frozen_clock(1)
    page = notices_after_signing_in(person)
    assert "failed attempt" not in page


def test_a_reservation_rolled_back_without_an_answer_is_not_reported(app, user, frozen_clock):
    """The domain: an attempt reserved (committed) and then abandoned, as a killed worker leaves
    it, then the right password: nothing to report."""
    with app.app_context():
        ctx = replace(app_context_of(app), client=Client.of("203.0.113.9", "Firefox"))
        attempt = begin_attempt(ctx, PASSWORD, "log-in", find_user(ctx.db, "alice"), "alice")
        assert isinstance(attempt, Attempt)
        ctx.db.rollback()  # the check never answered
        assert counter(app, user).password_failures == 1
        outcome = signing_in.log_in(ctx, "alice", RIGHT_PASSWORD)
        assert isinstance(outcome, SignedIn) and outcome.failures_before == 0
        elsewhere = replace(ctx, client=Client.of("198.51.100.7", "Chrome"))
        signing_in.log_in(elsewhere, "alice", "not the password")
        outcome = signing_in.log_in(ctx, "alice", RIGHT_PASSWORD)
        assert isinstance(outcome, SignedIn) and outcome.failures_before == 1


def test_answered_wrong_passwords_are_reported_in_the_right_words(unpropagated, user):
    person, someone = Person(unpropagated.test_client()), stranger(unpropagated)
    someone.login(password="a wrong guess")
    page = notices_after_signing_in(person)
    assert ONE in page and "There were 1" not in page
    person.logout()
    someone.login(password="a wrong guess")
    with mock.patch.object(signing_in, "verify_password", side_effect=database_error):
        assert someone.login().status_code == 500
    someone.login(password="another wrong guess")
    # Two answered failures and one check that died: two are reported.
    assert TWO in notices_after_signing_in(person)


def app_code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at((T0 + timedelta(seconds=30 * steps)).replace(tzinfo=UTC))


def test_the_two_factor_step_reports_only_answered_codes(unpropagated, user, user_with_app):
    """A right password is never reported; a wrong app code from someone else is; an app-code
    check stopped by a database error is not."""
    person = Person(unpropagated.test_client())
    assert person.login().location == TWO_FACTOR
    response = person.submit(TWO_FACTOR, {"code": app_code(user_with_app)})
    assert "failed attempt" not in person.client.get(response.location).get_data(as_text=True)
    person.logout()

    someone = stranger(unpropagated)
    assert someone.login().location == TWO_FACTOR
    with mock.patch.object(signing_in, "accept_code", side_effect=database_error):
        assert someone.submit(TWO_FACTOR, {"code": app_code(user_with_app, 1)}).status_code == 500
    assert "did not work" in someone.submit(TWO_FACTOR, {"code": "000000"}).get_data(as_text=True)
    assert person.login().location == TWO_FACTOR
    response = person.submit(TWO_FACTOR, {"code": app_code(user_with_app, 1)})
    assert response.location == "/"
    page = person.client.get("/").get_data(as_text=True)
    assert ONE in page


def test_the_person_s_own_mistakes_of_the_last_minutes_are_not_reported(
    unpropagated, user, frozen_clock
):
    """Two typos in this browser, then the right password: nothing to report. Someone else's
    wrong password is reported beside them, and a typo from this browser older than ten minutes
    is reported too (it may not have been the owner)."""
    app = unpropagated
    person = Person(app.test_client())
    person.login(password="a typo")
    person.login(password="another typo")
    page = notices_after_signing_in(person)
    assert "failed attempt" not in page
    person.logout()

    frozen_clock(60)
    stranger(app).login(password="a stranger's guess")
    person.login(password="a typo")
    assert ONE in notices_after_signing_in(person)
    person.logout()

    frozen_clock(2 * 60)
    person.login(password="a typo from this browser, long ago")
    frozen_clock(13 * 60)
    person.login(password="a fresh typo")
    assert ONE in notices_after_signing_in(person)
    assert counter(app, user).failures == 0 and counter(app, user).failures_since is None
