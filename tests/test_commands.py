"""The flask commands: init-db, demo (idempotent), create-user, prune."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from extensions import db
from models import (
    AttemptCounter,
    BackupCodeSet,
    CodeSheet,
    PendingLogin,
    TrustedDevice,
    User,
    UserSession,
)
from security.attempts import unknown_name_key
from tests.helpers import Person, give_codes, make_user, user_by_name


def test_init_db_is_safe_to_repeat(runner):
    assert "Database ready." in runner.invoke(args=["init-db"]).output
    assert runner.invoke(args=["init-db"]).exit_code == 0


def test_demo_account_is_created_once_and_can_log_in(app, runner):
    first = runner.invoke(args=["demo"])
    second = runner.invoke(args=["demo"])
    assert first.exit_code == 0 and second.exit_code == 0
    assert "username 'demo', password 'correct horse battery'" in first.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
    demo = user_by_name(app, "demo")
    assert demo.display_name == "Dana Demo" and "Film cameras" in demo.bio
    assert demo.avatar == "demo.svg"
    page = Person(app.test_client())
    page.login("demo", "correct horse battery")
    profile = page.client.get("/demo/").get_data(as_text=True)
    assert "/static/img/avatars/demo.svg" in profile and "Dana Demo" in profile
    assert Person(app.test_client()).login("demo", "correct horse battery").status_code == 302


def test_demo_reset_removes_codes_and_restores_the_password(app, runner):
    runner.invoke(args=["demo"])
    demo = user_by_name(app, "demo")
    give_codes(app, demo.id)
    result = runner.invoke(args=["demo", "--reset"])
    assert result.exit_code == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BackupCodeSet)) == 0


def test_create_user(app, runner):
    result = runner.invoke(
        args=[
            "create-user",
            "Erin",
            "--email",
            "erin@example.com",
            "--password",
            "a long passphrase",
        ]
    )
    assert result.exit_code == 0, result.output
    assert user_by_name(app, "erin").email == "erin@example.com"
    again = runner.invoke(args=["create-user", "erin", "--password", "a long passphrase"])
    assert again.exit_code != 0 and "This username is taken" in again.output
    weak = runner.invoke(args=["create-user", "frank", "--password", "password123"])
    assert weak.exit_code != 0 and "too common" in weak.output
    assert user_by_name(app, "frank") is None


def test_prune_removes_only_what_has_expired(app, runner, frozen_clock):
    """Abandoned sessions, stale half-finished log-ins, code sheets past their 30 minutes and
    quiet counters of unknown names go; live sessions, account counters and a closed unknown
    name stay."""
    start = frozen_clock()
    user_id = make_user(app)
    cap = app.config["MAX_CONSECUTIVE_FAILURES"]
    minutes = timedelta(minutes=1)
    with app.app_context():

        def session_row(name: str, created: datetime, seen: datetime) -> UserSession:
            return UserSession(
                id=name,
                public_id=name[:16],
                user_id=user_id,
                created_at=created,
                last_seen_at=seen,
                ip="",
                user_agent="",
            )

        db.session.add_all(
            [
                session_row("live", start - 60 * minutes, start - 5 * minutes),
                session_row("idle", start - 60 * minutes, start - 31 * minutes),
                session_row("too-old", start - 13 * 60 * minutes, start - minutes),
                PendingLogin(
                    id="fresh", user_id=user_id, purpose="password", created_at=start - 4 * minutes
                ),
                PendingLogin(
                    id="stale", user_id=user_id, purpose="password", created_at=start - 6 * minutes
                ),
                AttemptCounter(
                    key=unknown_name_key("quiet"),
                    failures=3,
                    password_failures=3,
                    next_attempt_at=start - timedelta(days=2),
                    next_password_attempt_at=start - timedelta(days=2),
                ),
                AttemptCounter(
                    key=unknown_name_key("waiting"),
                    failures=9,
                    password_failures=9,
                    next_attempt_at=start + minutes,
                    next_password_attempt_at=start + minutes,
                ),
                AttemptCounter(
                    key=unknown_name_key("recent"),
                    failures=1,
                    password_failures=1,
                    next_attempt_at=start - timedelta(hours=2),
                    next_password_attempt_at=start - timedelta(hours=2),
                ),
                AttemptCounter(
                    key=unknown_name_key("closed"),
                    failures=cap,
                    code_failures=cap,
                    next_attempt_at=start - timedelta(days=30),
                    next_password_attempt_at=None,
                ),
                AttemptCounter(
                    key=f"user:{user_id}",
                    failures=2,
                    password_failures=2,
                    next_attempt_at=start - timedelta(days=30),
                    next_password_attempt_at=start - timedelta(days=30),
                ),
            ]
        )
        db.session.commit()
        db.session.add(
            CodeSheet(
                user_id=user_id,
                session_id="live",
                public_id="OLD2",
                salt="$2b$04$" + "a" * 22,
                digests="",
                codes_token="",
                in_use=False,
                check_number=1,
                created_at=start - 31 * minutes,
            )
        )
        db.session.add_all(
            [
                TrustedDevice(
                    id="a" * 64, user_id=user_id, last_used_at=start - 366 * 24 * 60 * minutes
                ),
                TrustedDevice(
                    id="b" * 64, user_id=user_id, last_used_at=start - 364 * 24 * 60 * minutes
                ),
            ]
        )
        db.session.commit()

    result = runner.invoke(args=["prune"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "Removed: 2 sessions, 1 pending log-ins, 1 unsaved code sheets, "
        "1 devices unused for a year, 1 counters of unknown names, 0 demo sandboxes, "
        "0 notes of ended sessions"
    )
    with app.app_context():
        assert set(db.session.scalars(select(UserSession.id))) == {"live"}
        assert set(db.session.scalars(select(PendingLogin.id))) == {"fresh"}
        assert set(db.session.scalars(select(AttemptCounter.key))) == {
            unknown_name_key("waiting"),
            unknown_name_key("recent"),
            unknown_name_key("closed"),
            f"user:{user_id}",
        }
    again = runner.invoke(args=["prune"])
    assert again.output.strip() == (
        "Removed: 0 sessions, 0 pending log-ins, 0 unsaved code sheets, "
        "0 devices unused for a year, 0 counters of unknown names, 0 demo sandboxes, "
        "0 notes of ended sessions"
    )


def test_a_pruned_session_cookie_no_longer_signs_in(app, runner, frozen_clock):
    """Pruning is the same rule as the request-time check: the cookie of an idle session is
    dead whether its row went at the next request or in the nightly prune."""
    make_user(app)
    person = Person(app.test_client())
    person.login()
    assert person.client.get("/settings/").status_code == 200
    frozen_clock(minutes=31)
    assert runner.invoke(args=["prune"]).output.startswith("Removed: 1 sessions")
    response = person.client.get("/settings/")
    assert response.status_code == 302 and "/accounts/login/" in response.location
