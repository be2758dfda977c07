""" "Confirm it's you" (security/confirm.py): on an account with an app, two secrets, as a sign-in
or a recovery asks; without one, one. Every refusal changes nothing but the counted attempt."""

from __future__ import annotations

from datetime import UTC, timedelta

import pyotp
import pytest
from sqlalchemy import select

from blueprints.context import app_context_of
from extensions import db
from models import BackupCode, User
from security.confirm import NEEDS_SECOND_CODE, NEEDS_TWO, confirm_it_is_you
from security.outcomes import Reason, Refused
from security.sessions import start_session
from tests.helpers import PASSWORD, T0, snapshot

IGNORED = ("attempt_counters", "security_events")


def app_code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at((T0 + timedelta(seconds=30 * steps)).replace(tzinfo=UTC))


def confirm(app, user_id: int, password: str = "", codes: tuple[str, ...] = (), needed=None):
    """Confirm and, when it passes, let the action happen (commit); returns the outcome."""
    with app.app_context():
        ctx = app_context_of(app)
        row, _ = start_session(db.session, user_id, "192.0.2.1", "a browser")
        db.session.commit()
        user = db.session.get(User, user_id)
        outcome = confirm_it_is_you(ctx, user, "a test", password, codes, needed)
        if isinstance(outcome, Refused):
            return outcome
        assert outcome.succeed(row.id)
        db.session.commit()
        return outcome


def unused(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(BackupCode).where(BackupCode.used_at.is_(None))).all())


@pytest.mark.parametrize(
    "secrets",
    [
        pytest.param(lambda key, codes: (PASSWORD, (app_code(key),)), id="password and app"),
        pytest.param(lambda key, codes: (PASSWORD, (codes[0],)), id="password and backup code"),
        pytest.param(lambda key, codes: ("", (codes[0], codes[1])), id="two backup codes"),
        pytest.param(lambda key, codes: ("", (codes[0], app_code(key))), id="backup code and app"),
    ],
)
def test_an_app_account_takes_any_two_secrets(app, user, user_codes, user_with_app, secrets):
    password, codes = secrets(user_with_app, user_codes)
    outcome = confirm(app, user, password, codes)
    assert not isinstance(outcome, Refused), outcome
    spent = sum(1 for code in codes if len(code) == 8)
    assert unused(app) == 10 - spent


@pytest.mark.parametrize(
    ("password", "codes", "message"),
    [
        (PASSWORD, (), NEEDS_TWO),
        ("", ("CODE0",), NEEDS_SECOND_CODE),
        ("", (), NEEDS_SECOND_CODE),
    ],
)
def test_one_secret_is_not_enough_on_an_app_account(
    app, user, user_codes, user_with_app, password, codes, message
):
    """Too few secrets: the message, and nothing at all changes (not even the counter)."""
    codes = tuple(user_codes[0] if c == "CODE0" else c for c in codes)
    before = snapshot(app, ignore=("user_sessions",))
    outcome = confirm(app, user, password, codes)
    assert outcome == Refused(Reason.INCOMPLETE, message)
    assert snapshot(app, ignore=("user_sessions",)) == before


@pytest.mark.parametrize(
    ("password", "codes", "reason"),
    [
        ("not the password", ("APP",), Reason.WRONG_PASSWORD),
        (PASSWORD, ("12345678",), Reason.WRONG_CODE),
        ("", ("CODE0", "CODE0"), Reason.WRONG_CODE),
        ("", ("CODE0", "000000"), Reason.WRONG_CODE),
    ],
    ids=["wrong password", "wrong backup code", "the same code twice", "wrong app code"],
)
def test_a_wrong_second_secret_spends_nothing(
    app, user, user_codes, user_with_app, password, codes, reason
):
    """A right first backup code with a wrong second secret stays unused; the app's code is
    not used up either."""
    codes = tuple(
        user_codes[0] if c == "CODE0" else app_code(user_with_app) if c == "APP" else c
        for c in codes
    )
    before = snapshot(app, ignore=(*IGNORED, "user_sessions"))
    outcome = confirm(app, user, password, codes)
    assert isinstance(outcome, Refused) and outcome.reason == reason
    assert snapshot(app, ignore=(*IGNORED, "user_sessions")) == before
    assert unused(app) == 10


def test_without_an_app_the_password_alone_is_enough_and_no_code_is_spent(app, user, user_codes):
    outcome = confirm(app, user, PASSWORD, (user_codes[0],))
    assert not isinstance(outcome, Refused)
    assert unused(app) == 10


def test_ending_other_sessions_takes_any_one_secret(app, user, user_codes, user_with_app):
    assert confirm(app, user, "", (), needed=1).reason == Reason.INCOMPLETE
    assert not isinstance(confirm(app, user, "", (app_code(user_with_app),), needed=1), Refused)
    assert not isinstance(confirm(app, user, "", (user_codes[3],), needed=1), Refused)
    assert not isinstance(confirm(app, user, PASSWORD, (), needed=1), Refused)
    assert unused(app) == 9
