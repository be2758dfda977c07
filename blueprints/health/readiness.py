"""What /readyz checks: the database answers within 2 seconds, its schema is at the migrations'
head, and Redis answers when the rate limits are kept there.

Each check runs in a thread of its own and is waited for at most CHECK_DEADLINE seconds, so a
database that hangs (a connection that never answers, a pool with no free connection) still gets
a 503 in time. At most one check of each kind runs at a time: a caller while one is under way
waits for the same answer, so a hung database leaves one stuck thread, not one per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from blueprints.health import storage
from extensions import db

# The 2-second statement timeout, and the longest any caller waits for all checks together
# (below the 3 seconds a load balancer is promised).
STATEMENT_TIMEOUT_MS = 2000
CHECK_DEADLINE = 2.5
EXTENSION = "sparekey.readiness"

log = logging.getLogger("sparekey.health")


@dataclass
class _Run:
    """One run of a check in a daemon thread (a stuck one never holds up the process's exit)."""

    check: Callable[[], dict[str, bool]]
    done: threading.Event = field(default_factory=threading.Event)
    answer: dict[str, bool] = field(default_factory=dict)

    def start(self) -> _Run:
        threading.Thread(target=self._run, name="readiness check", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            self.answer = self.check()
        except Exception:
            # Whatever went wrong, the answer is "failed" (the names the check has no answer for).
            self.answer = {}
        finally:
            self.done.set()


class Probe:
    """A check that runs once at a time; `names` are what it answers for."""

    def __init__(self, names: tuple[str, ...], check: Callable[[], dict[str, bool]]) -> None:
        self.names = names
        self.check = check
        self._lock = threading.Lock()
        self._run: _Run | None = None

    def begin(self) -> _Run:
        with self._lock:
            if self._run is None or self._run.done.is_set():
                self._run = _Run(self.check).start()
            return self._run

    @staticmethod
    def answer(run: _Run, names: tuple[str, ...], timeout: float) -> dict[str, bool]:
        finished = run.done.wait(max(timeout, 0))
        return {name: finished and run.answer.get(name, False) for name in names}


class Readiness:
    """The checks of one app."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._heads: set[str] | None = None
        self._lock = threading.Lock()
        self._failed: tuple[str, ...] = ()
        self.probes = [Probe(("database", "schema"), self.check_database)]
        if storage.uses_redis(app.config):
            uri = app.config["RATELIMIT_STORAGE_URI"]
            self.probes.append(Probe(("redis",), lambda: {"redis": storage.redis_answers(uri)}))

    def migration_heads(self) -> set[str]:
        if self._heads is None:
            directory = self.app.extensions["migrate"].directory
            self._heads = set(ScriptDirectory(str(directory)).get_heads())
        return self._heads

    def check_database(self) -> dict[str, bool]:
        """`SELECT 1` under a 2-second statement timeout (PostgreSQL) or busy timeout (SQLite),
        then the revision in alembic_version against the migrations' head."""
        with self.app.app_context():
            engine = db.engine
        heads = self.migration_heads()
        with engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if connection.dialect.name == "postgresql":
                connection.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
            elif sqlite:
                connection.exec_driver_sql(f"PRAGMA busy_timeout = {STATEMENT_TIMEOUT_MS}")
            try:
                connection.execute(text("SELECT 1")).scalar_one()
                try:
                    rows = connection.execute(text("SELECT version_num FROM alembic_version"))
                    revisions = {row[0] for row in rows}
                except SQLAlchemyError:
                    # No alembic_version: a database never migrated (or made by create_all).
                    # The last statement: on PostgreSQL its aborted transaction is rolled back.
                    revisions = set()
            finally:
                if sqlite:
                    # The pooled connection goes back with the app's own busy timeout (app.py).
                    connection.exec_driver_sql("PRAGMA busy_timeout = 30000")
                connection.rollback()
        return {"database": True, "schema": bool(heads) and revisions == heads}

    def results(self) -> dict[str, bool]:
        """Every check's name → passed, within CHECK_DEADLINE seconds in all."""
        give_up = time.monotonic() + CHECK_DEADLINE
        runs = [(probe, probe.begin()) for probe in self.probes]
        answers: dict[str, bool] = {}
        for probe, run in runs:
            answers.update(Probe.answer(run, probe.names, give_up - time.monotonic()))
        return answers

    def note(self, failed: tuple[str, ...]) -> None:
        """One line when readiness changes (names only, never an error's text), not one per
        poll."""
        with self._lock:
            before, self._failed = self._failed, failed
        if failed and failed != before:
            log.warning("not ready: %s failed", ", ".join(failed))
        elif before and not failed:
            log.info("ready again: every check passes")


def readiness_of(app: Flask) -> Readiness:
    """The app's checks, made with it (app.py: register_health_and_metrics)."""
    return app.extensions[EXTENSION]


def install(app: Flask) -> None:
    app.extensions[EXTENSION] = Readiness(app)
