"""What the owner is told at the next success ("There was 1 failed attempt ...") counts only the
checks answered with a wrong secret. A check is counted on the counter before it starts (so a
request killed mid-check still counts for the wait); one that never got its answer (the worker
killed, a database error) counts for the wait and nothing else."""

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
        signing_in.log_in(ctx, "alice", "not the password")
        outcome = signing_in.log_in(ctx, "alice", RIGHT_PASSWORD)
        assert isinstance(outcome, SignedIn) and outcome.failures_before == 1


def test_answered_wrong_passwords_are_reported_in_the_right_words(unpropagated, user):
    person = Person(unpropagated.test_client())
    person.login(password="a wrong guess")
    page = notices_after_signing_in(person)
    assert ONE in page and "There were 1" not in page
    person.logout()
    person.login(password="a wrong guess")
    with mock.patch.object(signing_in, "verify_password", side_effect=database_error):
        assert person.login().status_code == 500
    person.login(password="another wrong guess")
    # Two answered failures and one check that died: two are reported.
    assert TWO in notices_after_signing_in(person)


def app_code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at((T0 + timedelta(seconds=30 * steps)).replace(tzinfo=UTC))


def test_the_two_factor_step_reports_only_answered_codes(unpropagated, user, user_with_app):
    """A right password is never reported; a wrong app code is; an app-code check stopped by a
    database error is not."""
    person = Person(unpropagated.test_client())
    assert person.login().location == TWO_FACTOR
    response = person.submit(TWO_FACTOR, {"code": app_code(user_with_app)})
    assert "failed attempt" not in person.client.get(response.location).get_data(as_text=True)
    person.logout()

    assert person.login().location == TWO_FACTOR
    with mock.patch.object(signing_in, "accept_code", side_effect=database_error):
        assert person.submit(TWO_FACTOR, {"code": app_code(user_with_app, 1)}).status_code == 500
    assert "did not work" in person.submit(TWO_FACTOR, {"code": "000000"}).get_data(as_text=True)
    response = person.submit(TWO_FACTOR, {"code": app_code(user_with_app, 1)})
    assert response.location == "/"
    page = person.client.get("/").get_data(as_text=True)
    assert ONE in page
