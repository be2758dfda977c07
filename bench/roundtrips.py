"""Round trips to PostgreSQL, counted at the driver: libpq's own trace of every protocol message
the app's connections send and receive (psycopg's `PGconn.trace`).

A round trip is the client waiting for the server: one simple `Query`, or one extended-protocol
batch ending in `Sync`, each answered by exactly one `ReadyForQuery`. So the count takes in
everything the connection does: statements, BEGIN, COMMIT, ROLLBACK, a pool's ping, the
preparing of a statement.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from sqlalchemy import event
from sqlalchemy.engine import Engine


class RoundTrips:
    """Every connection `engine` opens from now on is traced (the pool is emptied first, so none
    escapes); `start()` and `stop()` bound what is counted."""

    def __init__(self, engine: Engine) -> None:
        from psycopg import pq

        self._flags = pq.Trace.SUPPRESS_TIMESTAMPS
        self.engine = engine
        self.folder = tempfile.mkdtemp(prefix="sparekey-round-trips-")
        self.connections: list = []
        self.files: list[str] = []
        engine.dispose()
        event.listen(engine, "connect", self._traced, insert=True)

    def _traced(self, dbapi_connection, connection_record) -> None:
        self.connections.append(dbapi_connection.pgconn)
        self._trace(dbapi_connection.pgconn)

    def _trace(self, pgconn) -> None:
        path = os.path.join(self.folder, f"{len(self.files)}.trace")
        self.files.append(path)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # libpq writes through a FILE of its own on this descriptor, closed by untrace().
        pgconn.trace(descriptor)
        pgconn.set_trace_flags(self._flags)

    def _untrace_all(self) -> None:
        for pgconn in self.connections:
            with contextlib.suppress(Exception):
                pgconn.untrace()

    def start(self) -> None:
        """Count from here: every connection made so far gets a new, empty trace."""
        self._untrace_all()
        self.files = []
        for pgconn in self.connections:
            with contextlib.suppress(Exception):
                self._trace(pgconn)

    def stop(self) -> int:
        """Round trips since `start()` (on every connection, new ones included)."""
        self._untrace_all()
        return self.count()

    def close(self) -> None:
        event.remove(self.engine, "connect", self._traced)
        self._untrace_all()
        self.connections = []

    def messages(self) -> list[tuple[str, str]]:
        """(direction, message) of every message traced: F from the app, B from the server."""
        found = []
        for path in self.files:
            with open(path, encoding="utf-8", errors="replace") as trace:
                for line in trace:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) >= 3 and parts[0] in ("F", "B"):
                        found.append((parts[0], " ".join(parts[2:]).strip()))
        return found

    def count(self) -> int:
        return sum(
            1
            for direction, message in self.messages()
            if direction == "B" and message.startswith("ReadyForQuery")
        )

    def sent(self) -> list[str]:
        """What the app asked: each simple Query's text and each Parse's statement; a prepared
        statement run again shows only as Bind/Execute (see `waits()`)."""
        return [m for d, m in self.messages() if d == "F" and m.startswith(("Query", "Parse"))]

    def waits(self) -> list[str]:
        """One line per round trip: the messages the app sent before waiting for the server."""
        trips, batch = [], []
        for direction, message in self.messages():
            if direction == "F":
                batch.append(message.split(" ", 1)[0] if message.startswith("Bind") else message)
                if message.startswith(("Query", "Sync")):
                    trips.append(" + ".join(batch))
                    batch = []
        return trips
