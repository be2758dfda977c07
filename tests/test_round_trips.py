"""A signed-in page that only reads costs one round trip to the database (issue 17), counted at
the driver: libpq's own trace of the app's connections, in which a pool's ping, BEGIN, COMMIT
and ROLLBACK each show as a round trip of their own. And a write still runs in a transaction.
"""

from __future__ import annotations

import os
import re

import pytest

from extensions import db, reads_only


class DriverTrace:
    """Every connection the engine opens from now on is traced (the pool is emptied first);
    `start()` and `stop()` bound what is counted."""

    def __init__(self, engine, folder) -> None:
        from sqlalchemy import event

        self.engine, self.folder = engine, folder
        self.connections: list = []
        self.files: list = []
        engine.dispose()
        event.listen(engine, "connect", self._connected, insert=True)

    def _connected(self, dbapi_connection, record) -> None:
        self.connections.append(dbapi_connection.pgconn)
        self._trace(dbapi_connection.pgconn)

    def _trace(self, pgconn) -> None:
        from psycopg import pq

        path = self.folder / f"{len(self.files)}.trace"
        self.files.append(path)
        pgconn.trace(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "connect", self._connected)

    def start(self) -> None:
        for pgconn in self.connections:
            pgconn.untrace()
        self.files = []
        for pgconn in self.connections:
            self._trace(pgconn)

    def stop(self) -> list[str]:
        """One line per round trip: what the app sent before it waited for the server."""
        for pgconn in self.connections:
            pgconn.untrace()
        messages: list[list[str]] = []
        for path in self.files:
            for line in path.read_text(errors="replace").splitlines():
                parts = line.split("\t")
                if parts[0] in ("F", "B") and len(parts) > 2:
                    messages.append([parts[0], " ".join(parts[2:]).strip()])
                elif messages:  # a statement's own line breaks
                    messages[-1][1] += " " + line.strip()
        trips, batch, answers = [], [], 0
        for direction, message in messages:
            if direction == "F":
                batch.append(message)
                if message.startswith(("Query", "Sync")):
                    trips.append(" + ".join(batch))
                    batch = []
            elif message.startswith("ReadyForQuery"):
                answers += 1
        assert answers == len(trips), (answers, trips)
        return trips


@pytest.fixture
def trace(app, tmp_path):
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql")):
        pytest.skip(
            "round trips are counted in PostgreSQL's protocol: set DATABASE_URL to a "
            "postgresql:// URL (.ci/run's second pass does)"
        )
    with app.app_context():
        driver_trace = DriverTrace(db.engine, tmp_path)
    yield driver_trace
    driver_trace.close()


def test_a_signed_in_page_that_only_reads_is_one_round_trip(app, logged_in, trace):
    """The session row and its account in one SELECT; no ping before it, no BEGIN before it,
    no ROLLBACK after it."""
    assert logged_in.client.get("/settings/").status_code == 200  # connects, warms caches
    trace.start()
    page = logged_in.client.get("/settings/")
    trips = trace.stop()
    assert page.status_code == 200 and "alice" in page.get_data(as_text=True)
    assert len(trips) == 1, trips
    assert not re.search(r"BEGIN|ROLLBACK|COMMIT|Query\s+\";\"", trips[0]), trips
    if "Parse" in trips[0]:  # the statement is sent in full until the driver has prepared it
        assert re.search(r"FROM user_sessions JOIN users ON", trips[0]), trips[0][-400:]


@pytest.mark.parametrize(
    ("page", "shows"),
    [
        ("/", "10 of 10"),
        ("/settings/security/two-factor/", "10 of 10"),
        ("/settings/security/two-factor/backup-codes/", "<strong>10 of 10</strong> codes left"),
    ],
)
def test_a_page_that_reads_the_code_status_is_one_round_trip(
    app, logged_in, user_codes, trace, page, shows
):
    """The page's read of the code status goes into the session lookup's own statement (a
    LATERAL subquery of the session's account): one statement, one Sync, one round trip."""
    assert logged_in.client.get(page).status_code == 200
    trace.start()
    response = logged_in.client.get(page)
    trips = trace.stop()
    assert response.status_code == 200 and shows in response.get_data(as_text=True)
    assert len(trips) == 1, trips
    assert trips[0].count("Execute") == 1 and trips[0].count("Sync") == 1, trips
    if "Parse" in trips[0]:  # the statement is sent in full until the driver has prepared it
        assert "LEFT OUTER JOIN LATERAL" in trips[0] and "backup_code_sets" in trips[0], trips


def test_several_reads_ahead_go_beside_the_lookup_in_one_pipeline(
    app, logged_in, user, user_codes, trace
):
    """Only one read folds into the lookup; more go beside it in the same pipeline (one Sync,
    one round trip), each giving the rows of the page's own read."""
    from blueprints.context import app_context_of
    from security.backup_codes import (
        _CODE_STATUS,
        _CODE_STATUS_AND_SHEET,
        CODE_STATUS,
        CODE_STATUS_AND_SHEET,
    )
    from security.read_ahead import take
    from security.sessions import load_session

    with logged_in.client.session_transaction() as cookie:
        token = cookie["_user_id"]
    both = (CODE_STATUS, CODE_STATUS_AND_SHEET)
    timeouts = app_context_of(app).timeouts
    for _ in range(2):
        with app.app_context():
            trace.start()
            assert load_session(db.session, token, timeouts, both) is not None
            trips = trace.stop()
            status = take(db.session, CODE_STATUS, user)
            with_sheet = take(db.session, CODE_STATUS_AND_SHEET, user)
            assert status == db.session.execute(_CODE_STATUS, {"user_id": user}).all()
            own = db.session.execute(_CODE_STATUS_AND_SHEET, {"user_id": user}).all()
            assert with_sheet == own and len(own) == 1
    assert len(trips) == 1, trips
    assert trips[0].count("Execute") == 3 and trips[0].count("Sync") == 1, trips


def test_the_once_a_minute_write_runs_in_its_own_transaction(
    app, user, person, frozen_clock, trace
):
    """A minute on, the page writes `last_seen_at`: BEGIN, the UPDATE and COMMIT, after the
    one SELECT; the next page is one round trip again."""
    person.login()
    logged_in = person
    assert logged_in.client.get("/settings/").status_code == 200
    frozen_clock(61)
    trace.start()
    assert logged_in.client.get("/settings/").status_code == 200
    trips = trace.stop()
    writes = [n for n, trip in enumerate(trips) if "UPDATE user_sessions" in trip]
    assert len(writes) == 1, trips
    assert '"BEGIN"' in " ".join(trips[: writes[0] + 1]), trips
    assert any('"COMMIT"' in trip for trip in trips[writes[0] :]), trips
    trace.start()
    assert logged_in.client.get("/settings/").status_code == 200
    assert len(trace.stop()) == 1


@pytest.mark.parametrize(
    ("statement", "only_reads"),
    [
        ("SELECT users.id FROM users WHERE users.id = %(id)s", True),
        ("  select 1", True),
        ("SELECT users.id FROM users WHERE users.id = %(id)s FOR UPDATE", False),
        ("SELECT users.id FROM users FOR NO KEY UPDATE", False),
        ("SELECT users.id FROM users FOR SHARE", False),
        ("SELECT users.id FROM users FOR KEY SHARE", False),
        ("UPDATE users SET bio = %(bio)s WHERE users.id = %(id)s", False),
        ("INSERT INTO security_events (kind) VALUES (%(kind)s) RETURNING id", False),
        ("DELETE FROM user_sessions WHERE user_sessions.id = %(id)s", False),
        ("SET LOCAL statement_timeout = 2000", False),
        ("SAVEPOINT sa_savepoint_1", False),
        ("WITH gone AS (DELETE FROM user_sessions RETURNING id) SELECT count(*) FROM gone", False),
    ],
)
def test_only_a_plain_select_runs_outside_a_transaction(statement, only_reads):
    """Anything that writes or locks rows turns the transaction on before it runs."""
    assert reads_only(statement) is only_reads
