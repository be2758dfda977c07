"""Real threads against a running server: one code cannot be spent twice, guesses stay bounded."""

from __future__ import annotations

import threading
from unittest import mock

import bcrypt
import pytest
from sqlalchemy import func, select

from extensions import db
from models import BackupCode, SecurityEvent
from tests.helpers import PASSWORD, give_codes, make_user
from tools.live import Browser, race, running


@pytest.mark.parametrize("round_number", range(5))
def test_twenty_clients_one_valid_code_exactly_one_gets_in(app_factory, round_number):
    """Checklist 16/76: the conditional UPDATE lets one of 20 simultaneous uses succeed, no 5xx.

    The back-off is lifted here so that all twenty really reach the redeem statement together.
    """
    app = app_factory("live.db", FAILURES_BEFORE_BACKOFF=1000)
    user_id = make_user(app, "alice", PASSWORD)
    codes = give_codes(app, user_id)
    with running(app) as base:
        browsers = [Browser(base) for _ in range(20)]
        tokens = [browser.ready_to_enter_code("alice") for browser in browsers]
        results = race(browsers, tokens, [codes[round_number]] * 20)
    statuses = [status for status, _, _ in results]
    assert all(status < 500 for status in statuses), statuses
    winners = [r for r in results if r[0] == 302 and r[1].endswith("/accounts/password/new/")]
    assert len(winners) == 1
    losers = [body for status, _, body in results if status == 200]
    assert len(losers) == 19 and all("That code did not work." in body for body in losers)
    with app.app_context():
        used = db.session.scalar(
            select(func.count()).select_from(BackupCode).where(BackupCode.used_at.is_not(None))
        )
    assert used == 1


def test_fifty_concurrent_wrong_codes_are_evaluated_at_most_five_times(app_factory, frozen_clock):
    """Checklist 27: the counter is reserved before hashing, so a race cannot overrun it.

    The clock stands still, so the back-off that follows the fifth failure never runs out during
    the race however slowly the threads are scheduled; every evaluation is one code derivation
    (one bcrypt call), counted in the server's threads.
    """
    app = app_factory("live.db")
    user_id = make_user(app, "alice", PASSWORD)
    codes = give_codes(app, user_id)
    wrong = [f"{n:08d}" for n in range(100) if f"{n:08d}" not in codes][:50]
    real_hashpw = bcrypt.hashpw
    lock = threading.Lock()
    derivations: list[tuple] = []

    def counted_hashpw(*args, **kwargs):
        with lock:
            derivations.append(args)
        return real_hashpw(*args, **kwargs)

    with running(app) as base:
        browsers = [Browser(base) for _ in range(50)]
        tokens = [browser.ready_to_enter_code("alice") for browser in browsers]
        with mock.patch.object(bcrypt, "hashpw", counted_hashpw):
            results = race(browsers, tokens, wrong)
    statuses = [status for status, _, _ in results]
    assert statuses == [200] * 50
    evaluated = [body for _, _, body in results if "That code did not work." in body]
    throttled = [body for _, _, body in results if "Too many failed attempts" in body]
    assert len(derivations) <= 5
    # No fewer either: the five free failures were evaluated, the bound is not met by refusing all.
    assert len(derivations) == 5
    assert len(evaluated) == len(derivations)
    assert len(evaluated) + len(throttled) == 50
    with app.app_context():
        failures = db.session.scalar(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.kind == "backup_code_failed")
        )
    assert failures == len(evaluated)


def test_a_copied_cookie_is_dead_after_log_out_on_a_real_server(app_factory):
    """Checklist 57, over real HTTP: the cookie jar is copied, the owner logs out, replay fails."""
    app = app_factory("live.db")
    make_user(app, "alice", PASSWORD)
    with running(app) as base:
        owner = Browser(base)
        assert owner.log_in("alice", PASSWORD) == 302
        assert owner.get("/settings/")[0] == 200
        thief = Browser(base)
        for cookie in owner.jar:
            thief.jar.set_cookie(cookie)
        assert thief.get("/settings/")[0] == 200
        owner.post("/accounts/logout/", {"csrf_token": owner.token("/settings/")})
        status, location, _ = thief.get("/settings/")
    assert status == 302 and "/accounts/login/" in location
