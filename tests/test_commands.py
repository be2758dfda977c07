"""The flask commands: init-db, demo (idempotent), create-user."""

from __future__ import annotations

from sqlalchemy import func, select

from extensions import db
from models import BackupCodeSet, User
from tests.conftest import Person, give_codes, user_by_name


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
    assert again.exit_code != 0 and "already exists" in again.output
    weak = runner.invoke(args=["create-user", "frank", "--password", "password123"])
    assert weak.exit_code != 0 and "too common" in weak.output
    assert user_by_name(app, "frank") is None
