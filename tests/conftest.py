"""Fixtures only (helpers are in tests/helpers.py): an app on a fresh database, a client, a CLI
runner, a person-like client, one frozen clock, and users that chain like the journeys:
`user` → `user_codes` → `user_with_app`.

The database is a fresh SQLite file per test, or the PostgreSQL database named by `DATABASE_URL`
(emptied and re-created for each test) when that is set, as the second CI run does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

import clock
from app import create_app
from extensions import db
from tests.helpers import (
    PASSWORD,
    T0,
    Person,
    database_uri,
    fresh_tables,
    give_codes,
    make_user,
    postgresql_url,
    turn_on_app,
)
from tools.relay import Relay, relay_to


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
def frozen_clock() -> Iterator[Callable[..., datetime]]:
    """The clock stands at T0; `frozen_clock(seconds, **timedelta_args)` moves it to that long
    after T0 and returns the new time."""

    def move(seconds: float = 0, **delta: float) -> datetime:
        when = T0 + timedelta(seconds=seconds, **delta)
        clock.set_now(when)
        return when

    move()
    yield move
    clock.set_now(None)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def person(client: FlaskClient) -> Person:
    return Person(client)


@pytest.fixture
def user(app: Flask) -> int:
    return make_user(app, "alice", PASSWORD, email="alice@example.com", phone="+15550100199")


@pytest.fixture
def user_codes(app: Flask, user: int) -> list[str]:
    return give_codes(app, user)


@pytest.fixture
def user_with_app(app: Flask, user: int, frozen_clock) -> str:
    """The account has an authentication app (on the frozen clock); returns its secret."""
    return turn_on_app(app, user)


@pytest.fixture
def other_user(app: Flask) -> int:
    return make_user(app, "bob", "bob's own long password")


@pytest.fixture
def logged_in(person: Person, user: int) -> Person:
    person.login()
    return person


@pytest.fixture
def relayed_database_url() -> Iterator[tuple[Relay, str]]:
    """A relay to the tests' PostgreSQL database (skipped without one), and the URL that reaches
    it through the relay: a server started with that URL loses its database when the test cuts
    the relay."""
    url = urlsplit(postgresql_url())
    with relay_to(url.hostname or "127.0.0.1", url.port or 5432) as relay:
        user = url.username or "postgres"
        login = f"{user}:{url.password}" if url.password else user
        netloc = f"{login}@127.0.0.1:{relay.port}"
        yield relay, urlunsplit(("postgresql", netloc, url.path, url.query, ""))
