"""Fixtures: an app on a fresh database, a client, a CLI runner, a person-like helper.

The database is a fresh SQLite file per test, or the PostgreSQL database named by `DATABASE_URL`
(emptied and re-created for each test) when that is set, as the second CI run does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from config import normalise_database_url
from extensions import db
from models import User
from security import clock
from security.accounts import create_user
from security.backup_codes import replace_code_set
from security.keys import current_hasher

PASSWORD = "purple elephant sunrise"
CSRF_PATTERN = re.compile(r'name="(?:[\w-]+-)?csrf_token"[^>]*?value="([^"]+)"')
CODE_PATTERN = re.compile(r'<span class="code-value">(\d{4}) (\d{4})</span>')


def database_uri(tmp_path, name: str = "test.db") -> str:
    """`DATABASE_URL` (normalised) when it is set, else a SQLite file `name` in `tmp_path`.

    Apps on `DATABASE_URL` share one database: start them with `fresh_tables(app)`.
    """
    if os.environ.get("DATABASE_URL"):
        return normalise_database_url(os.environ["DATABASE_URL"])
    return f"sqlite:///{tmp_path / name}"


def fresh_tables(app: Flask) -> None:
    """Empty tables for `app`: a shared (PostgreSQL) database is dropped and re-created."""
    with app.app_context():
        if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
            db.drop_all()
        db.create_all()


@pytest.fixture
def app(tmp_path) -> Iterator[Flask]:
    app = create_app({"SPAREKEY_ENV": "test", "SQLALCHEMY_DATABASE_URI": database_uri(tmp_path)})
    fresh_tables(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    clock.set_now(None)


@pytest.fixture
def app_factory(tmp_path):
    """More apps on the test database (live servers, other settings), disposed of afterwards."""
    made: list[Flask] = []

    def make(name: str = "extra.db", **config) -> Flask:
        app = create_app(
            {
                "SPAREKEY_ENV": "test",
                "SQLALCHEMY_DATABASE_URI": database_uri(tmp_path, name),
                **config,
            }
        )
        fresh_tables(app)
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


def csrf_from(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def codes_from(html: str) -> list[str]:
    return [a + b for a, b in CODE_PATTERN.findall(html)]


class Person:
    """A browser-like client: it reads the CSRF token from the page it submits, as a form would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def submit(self, page: str, data: dict, action: str | None = None, **kwargs):
        html = self.client.get(page).get_data(as_text=True)
        return self.client.post(
            action or page, data={"csrf_token": csrf_from(html), **data}, **kwargs
        )

    def signup(self, username: str = "alice", password: str = PASSWORD, **extra):
        return self.submit(
            "/accounts/signup/", {"username": username, "password": password, **extra}
        )

    def login(self, identifier: str = "alice", password: str = PASSWORD, **kwargs):
        return self.submit(
            "/accounts/login/", {"identifier": identifier, "password": password}, **kwargs
        )

    def logout(self):
        return self.submit("/settings/", {}, action="/accounts/logout/")

    def get_codes(self, password: str = PASSWORD) -> list[str]:
        page = "/settings/security/two-factor/backup-codes/confirm/"
        response = self.submit(page, {"password": password})
        codes = codes_from(response.get_data(as_text=True))
        assert len(codes) == 10, response.get_data(as_text=True)
        return codes

    def start_recovery(self, identifier: str = "alice"):
        return self.submit(
            "/accounts/password/reset/",
            {"identifier": identifier, "use_backup_code": "1"},
        )

    def enter_code(self, code: str, **kwargs):
        return self.submit("/accounts/password/reset/backup-code/", {"code": code}, **kwargs)


@pytest.fixture
def person(client: FlaskClient) -> Person:
    return Person(client)


@pytest.fixture
def logged_in(person: Person, user: int) -> Person:
    person.login()
    return person


def make_user(app: Flask, username: str = "alice", password: str = PASSWORD, **extra) -> int:
    with app.app_context():
        return create_user(db.session, current_hasher(), username, password, **extra).id


def give_codes(app: Flask, user_id: int) -> list[str]:
    with app.app_context():
        return replace_code_set(db.session, current_hasher(), user_id).codes


@pytest.fixture
def user(app: Flask) -> int:
    return make_user(app, "alice", PASSWORD, email="alice@example.com", phone="+15550100199")


@pytest.fixture
def user_codes(app: Flask, user: int) -> list[str]:
    return give_codes(app, user)


@pytest.fixture
def other_user(app: Flask) -> int:
    return make_user(app, "bob", "bob's own long password")


def user_by_name(app: Flask, username: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        if user is not None:
            db.session.expunge(user)
        return user


def count(app: Flask, model, *where) -> int:
    """How many rows of `model` (matching `where`) the database holds."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def wrong_code(codes: list[str], index: int) -> str:
    """An 8-digit code that is not one of `codes`, different for every `index`."""
    candidate = f"{index:08d}"
    return candidate if candidate not in codes else f"{99999999 - index:08d}"


def table_dump(app: Flask) -> str:
    """Every row of every table as text, on SQLite and PostgreSQL alike."""
    return "\n".join(f"{table} {row}" for table, rows in snapshot(app).items() for row in rows)


def snapshot(app: Flask, ignore: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every row of every table (minus `ignore`), to show that a refused request changed nothing."""
    with app.app_context():
        return {
            table.name: sorted(
                tuple(str(value) for value in row) for row in db.session.execute(table.select())
            )
            for table in db.metadata.sorted_tables
            if table.name not in ignore
        }
