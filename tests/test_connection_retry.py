"""No ping on check-out, and still no failed page when a pooled connection is gone (issue 17):
one the server closed is replaced before use, and one that dies unseen is retried once.

The connections are killed for real: by PostgreSQL (`pg_terminate_backend` from another
connection, as a restart or an administrator does) or by cutting the TCP relay in between.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import event

from config import normalise_database_url
from extensions import db
from tests.helpers import Person, make_user, postgresql_url

PAGE = "/settings/"
# A page whose view reads ahead: its read goes with the lookup, in one pipeline.
READS_AHEAD = "/settings/security/two-factor/backup-codes/"


def backend_pid(app) -> int:
    """The server process behind the pooled connection the next request will get (the test
    client's requests come one at a time, so the pool holds just this one)."""
    with app.app_context():
        pid = db.session.connection().connection.dbapi_connection.info.backend_pid
        db.session.remove()
    return pid


def terminate(pid: int) -> None:
    """End that server process from another connection and wait until it is gone."""
    with psycopg.connect(postgresql_url(), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        give_up = time.monotonic() + 30
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            assert time.monotonic() < give_up, "the server process did not end"
            time.sleep(0.01)


def signed_in_page(person, page: str = PAGE) -> str:
    response = person.client.get(page)
    assert response.status_code == 200, response.status_code
    body = response.get_data(as_text=True)
    assert "alice" in body
    return body


@pytest.fixture
def served(app):
    """PostgreSQL only; exceptions become the 500 page, as under gunicorn."""
    postgresql_url()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


@contextmanager
def lookups_sent(app) -> Iterator[list[int]]:
    """The server process of each session lookup sent meanwhile."""
    with app.app_context():
        engine = db.engine
    sent: list[int] = []

    def lookup(conn, cursor, statement, parameters, context, executemany):
        if "FROM user_sessions JOIN users" in statement:
            sent.append(cursor.connection.info.backend_pid)

    event.listen(engine, "before_cursor_execute", lookup)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", lookup)


def test_a_connection_the_server_ended_is_replaced_before_use(served, logged_in):
    """Its socket says so without a round trip: the pool opens a new one and the lookup is
    sent once, on it."""
    signed_in_page(logged_in)
    pid = backend_pid(served)
    terminate(pid)
    with lookups_sent(served) as sent:
        signed_in_page(logged_in)
    assert len(sent) == 1 and sent[0] != pid, (pid, sent)


@pytest.mark.parametrize("page", [PAGE, READS_AHEAD])
def test_a_connection_that_dies_unseen_is_tried_once_more(served, logged_in, page):
    """The server ends the connection after the pool handed it out, just before the session
    lookup is sent: that statement fails (alone, or in the pipeline with the page's read
    ahead), and the same request sends it again on a new connection."""
    signed_in_page(logged_in, page)
    with served.app_context():
        engine = db.engine
    lookups: list[int] = []

    def end_it_first(conn, cursor, statement, parameters, context, executemany):
        if "FROM user_sessions JOIN users" in statement:
            lookups.append(cursor.connection.info.backend_pid)
            if len(lookups) == 1:
                terminate(lookups[0])

    event.listen(engine, "before_cursor_execute", end_it_first)
    try:
        body = signed_in_page(logged_in, page)
    finally:
        event.remove(engine, "before_cursor_execute", end_it_first)
    assert len(lookups) == 2 and lookups[0] != lookups[1], lookups
    if page == READS_AHEAD:
        assert "Get Backup Codes" in body


@pytest.mark.parametrize("page", [PAGE, READS_AHEAD])
def test_the_retry_is_once(served, logged_in, page):
    """When the new connection fails too, the page is the styled 500, not a loop."""
    signed_in_page(logged_in, page)
    with served.app_context():
        engine = db.engine
    lookups: list[int] = []

    def end_every_one(conn, cursor, statement, parameters, context, executemany):
        if "FROM user_sessions JOIN users" in statement:
            lookups.append(cursor.connection.info.backend_pid)
            terminate(lookups[-1])

    event.listen(engine, "before_cursor_execute", end_every_one)
    try:
        response = logged_in.client.get(page)
    finally:
        event.remove(engine, "before_cursor_execute", end_every_one)
    assert response.status_code == 500
    assert "Something went wrong" in response.get_data(as_text=True)
    assert len(lookups) == 2
    signed_in_page(logged_in, page)


def test_a_cut_connection_costs_no_failed_page(app_factory, relayed_database_url):
    """Every connection goes through a relay; the relay cuts them all (a network cut, a
    database restart) and takes new ones at once: the next signed-in page works."""
    relay, url = relayed_database_url
    app = app_factory(
        SQLALCHEMY_DATABASE_URI=normalise_database_url(url), PROPAGATE_EXCEPTIONS=False
    )
    make_user(app)
    person = Person(app.test_client())
    assert person.login().status_code == 302
    signed_in_page(person)
    relay.cut()
    relay.resume()
    for _ in range(3):
        signed_in_page(person)
    assert relay.cuts == 1
