"""The operator's commands, made safe for production: `demo` refuses there; `create-user` checks
what sign-up checks and refuses control characters, writing nothing when it refuses;
`unlock-account` leaves an event on the account and a line in the security log; `init-db`
migrates an empty database, marks a pre-migration one only when its schema is exactly the
models', and otherwise refuses without changing anything."""

from __future__ import annotations

import logging

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from app import create_app
from extensions import db
from models import AttemptCounter, SecurityEvent, User
from security.attempts import account_key
from tests.helpers import PASSWORD, Person, count, database_uri, make_user, table_dump

GOOD = {"username": "erin", "email": "", "phone": "", "password": "a long passphrase"}


def create_user(runner, **values):
    given = {**GOOD, **values}
    args = ["create-user", given["username"], "--password", given["password"]]
    for option in ("email", "phone"):
        if given[option]:
            args += [f"--{option}", given[option]]
    return runner.invoke(args=args)


# --- demo ---------------------------------------------------------------------------------------


def test_demo_refuses_in_production(app_factory):
    production = app_factory(
        "production.db",
        SPAREKEY_ENV="production",
        SECRET_KEY="k" * 48,
        SITE_URL="https://sparekey.example",
    )
    result = production.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code != 0
    assert "does not run in production" in result.output and "create-user" in result.output
    assert "correct horse battery" not in result.output
    assert count(production, User) == 0


# --- create-user --------------------------------------------------------------------------------

# (field, typed value, what the command and the sign-up form both say)
LIKE_SIGN_UP = [
    ("email", "not-an-email", "Enter an email address like name@example.com."),
    ("email", "erin@localhost", "Enter an email address like name@example.com."),
    ("username", "er", "Use 3 to 30 characters"),
    ("username", "erin!", "Use 3 to 30 characters"),
    ("username", "12345", "Use at least one letter"),
    ("username", "settings", "This username is not available."),
    ("phone", "12", "Enter a phone number of 7 to 15 digits"),
    ("password", "short", "Use at least 8 characters."),
    ("password", "password123", "This password is too common."),
    ("password", "sparekey1", "This password is too close to your username or the site name."),
]


@pytest.mark.parametrize(("field", "value", "message"), LIKE_SIGN_UP)
def test_create_user_refuses_what_sign_up_refuses(app, runner, field, value, message):
    before = table_dump(app)
    result = create_user(runner, **{field: value})
    assert result.exit_code != 0 and f"{field}: {message}" in result.output
    assert table_dump(app) == before
    # The sign-up form says the same of the same value.
    form = {**GOOD, field: value}
    page = Person(app.test_client()).signup(**form).get_data(as_text=True)
    assert message in page.replace("&#39;", "'")
    assert count(app, User) == 0


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("username", "erin\x1b", "U+001B"),
        ("email", "erin@example.com\r", "U+000D"),
        ("phone", "+1 555 010\t0199", "U+0009"),
        ("password", "a long passphrase\x07", "U+0007"),
    ],
)
def test_create_user_refuses_control_characters(app, runner, field, value, shown):
    before = table_dump(app)
    result = create_user(runner, **{field: value})
    assert result.exit_code != 0
    assert f"{field}: contains a control character ({shown})" in result.output
    assert table_dump(app) == before


def test_create_user_normalises_as_sign_up_does(app, runner):
    result = create_user(
        runner, username=" Erin ", email="Erin@Example.COM", phone="+1 (555) 010-0199"
    )
    assert result.exit_code == 0, result.output
    assert "Created erin." in result.output
    with app.app_context():
        erin = db.session.scalar(select(User).where(User.username == "erin"))
        assert (erin.email, erin.phone) == ("erin@example.com", "+15550100199")
    assert Person(app.test_client()).login("+1 555 010 0199", GOOD["password"]).status_code == 302
    taken = create_user(runner, username="frank", email="erin@example.com")
    assert taken.exit_code != 0 and "already exists" in taken.output
    assert count(app, User) == 1


# --- unlock-account -----------------------------------------------------------------------------


def test_unlock_account_leaves_an_event_and_a_log_line(app, runner, user, caplog):
    caplog.set_level(logging.INFO)
    with app.app_context():
        db.session.add(AttemptCounter(key=account_key(user), failures=100, password_failures=100))
        db.session.commit()
    result = runner.invoke(args=["unlock-account", "alice"])
    assert result.exit_code == 0, result.output
    assert "Failed attempts cleared for alice" in result.output
    with app.app_context():
        assert db.session.get(AttemptCounter, account_key(user)).password_failures == 0
        kinds = list(db.session.scalars(select(SecurityEvent.kind)))
    assert kinds.count("account_unlocked") == 1
    lines = [
        record
        for record in caplog.records
        if record.name == "sparekey.security" and "account_unlocked" in record.getMessage()
    ]
    assert len(lines) == 1
    owner = Person(app.test_client())
    assert owner.login().status_code == 302
    page = owner.client.get("/settings/security/events/").get_data(as_text=True)
    assert "Failed attempts cleared by the site&#39;s administrator" in page


def test_unlock_account_of_no_account_records_nothing(app, runner, user):
    result = runner.invoke(args=["unlock-account", "nobody"])
    assert result.exit_code != 0 and "No account matches 'nobody'." in result.output
    assert count(app, SecurityEvent, SecurityEvent.kind == "account_unlocked") == 0


# --- init-db ------------------------------------------------------------------------------------


@pytest.fixture
def bare_app(tmp_path):
    """An app on a database with no tables at all (dropped again afterwards)."""
    app = create_app(
        {"SPAREKEY_ENV": "test", "SQLALCHEMY_DATABASE_URI": database_uri(tmp_path, "bare.db")}
    )
    empty(app)
    yield app
    empty(app)
    with app.app_context():
        db.session.execute(text("DROP TABLE IF EXISTS another_apps_table"))
        db.session.commit()
        db.engine.dispose()


def empty(app) -> None:
    with app.app_context():
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()


def schema(app) -> tuple[set[str], list]:
    """The tables, and how they differ from the models."""
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        return set(inspect(connection).get_table_names()), differences


def test_init_db_migrates_an_empty_database(bare_app):
    result = bare_app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    tables, differences = schema(bare_app)
    assert "alembic_version" in tables and differences == []


def test_init_db_ignores_another_applications_tables(bare_app):
    """A pre-migration database that shares its schema with another application's table: that
    table is not a difference from the models."""
    with bare_app.app_context():
        db.create_all()
        db.session.execute(text("CREATE TABLE another_apps_table (id INTEGER PRIMARY KEY)"))
        db.session.commit()
    result = bare_app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    tables, _ = schema(bare_app)
    assert {"alembic_version", "users", "another_apps_table"} <= tables


def test_init_db_marks_a_pre_migration_database_only_when_it_matches(bare_app):
    """Made by `create_all` (as earlier versions did): exactly the models' schema, so it is
    marked as the newest revision and keeps its data. With a table missing, which revision it
    is at is a guess: refused, nothing changed."""
    with bare_app.app_context():
        db.create_all()
    make_user(bare_app)
    runner = bare_app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    assert Person(bare_app.test_client()).login("alice", PASSWORD).status_code == 302

    with bare_app.app_context():
        db.session.execute(text("DROP TABLE alembic_version"))
        db.session.execute(text("DROP TABLE used_links"))
        db.session.commit()
    before, _ = schema(bare_app)
    result = runner.invoke(args=["init-db"])
    assert result.exit_code != 0
    assert "no migration history" in result.output and "add_table used_links" in result.output
    assert "Back it up first" in result.output
    after, _ = schema(bare_app)
    assert after == before and "alembic_version" not in after
    # Every command that prepares the database refuses the same way.
    assert runner.invoke(args=["create-user", "erin", "--password", "a long passphrase"]).exit_code
    assert count(bare_app, User) == 1
