"""/healthz (the process answers) and /readyz (database within 2 s, schema at the migrations'
head, Redis when the limits are kept there; 503 within 3 s otherwise), and Redis at start-up and
while it is down: refused unless RATELIMIT_FALLBACK_OK, one warning a minute, back on Redis when
it returns."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from blueprints.health.storage import UNREACHABLE
from config import normalise_database_url
from extensions import db
from tests.helpers import Person, forget_migrations, migrate, redis_url
from tools import gunicorn as gunicorn_launcher
from tools.relay import relay_to

ROOT = Path(__file__).resolve().parent.parent
INITIAL_REVISION = "e2b5f77575ce"
# bandit B105: a test's own token.
TOKEN = "test-health-metrics-token"  # nosec B105


# --- helpers --------------------------------------------------------------------------------------


def timed_readyz(client) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = client.get("/readyz")
    return response.status_code, response.get_json(), time.monotonic() - started


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never says a word: a database that hangs."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


class Lines(logging.Handler):
    """The messages one logger writes, whatever the logging set-up does with them."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.DEBUG)
        self.logger = logging.getLogger(name)
        self.messages: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelno, record.getMessage()))

    def __enter__(self) -> Lines:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self)

    def at(self, level: int) -> list[str]:
        return [message for levelno, message in self.messages if levelno == level]


def metric(client, name: str) -> float:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
        if sample.name == name
    )


# --- /healthz ------------------------------------------------------------------------------------


def test_healthz_answers_while_the_database_does_not(tmp_path):
    """Liveness asks nothing of the database: a restart would not bring it back."""
    missing = tmp_path / "no-such-directory" / "sparekey.db"
    app = create_app({"SPAREKEY_ENV": "test", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{missing}"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert "Set-Cookie" not in response.headers
    with app.app_context():
        db.engine.dispose()


# --- /readyz: the database and its schema ---------------------------------------------------------


def test_readyz_is_ok_on_a_migrated_database(app):
    migrate(app)
    try:
        client = app.test_client()
        status, body, _ = timed_readyz(client)
        assert status == 200
        assert body == {"status": "ok", "checks": {"database": "ok", "schema": "ok"}}
        response = client.get("/readyz")
        assert response.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in response.headers
    finally:
        forget_migrations(app)


def test_readyz_names_the_schema_of_a_database_never_migrated(app, caplog):
    """Tables made without migrations (no alembic_version): log-in may fail, so not ready."""
    forget_migrations(app)
    status, body, _ = timed_readyz(app.test_client())
    assert status == 503
    assert body == {"status": "unavailable", "checks": {"database": "ok", "schema": "failed"}}
    assert "not ready: schema failed" in caplog.text


def test_readyz_names_the_schema_of_a_database_behind_the_head(app):
    """A release brought a migration that `flask --app app init-db` has not applied yet."""
    migrate(app, INITIAL_REVISION)
    try:
        status, body, _ = timed_readyz(app.test_client())
        assert status == 503
        assert body["checks"] == {"database": "ok", "schema": "failed"}
        migrate(app)
        assert timed_readyz(app.test_client())[0] == 200
    finally:
        forget_migrations(app)


def test_readyz_answers_503_within_3_seconds_while_the_database_hangs():
    """The database's port takes the connection and never answers: still a 503 in time, a
    second poll too, with one stuck check between them, and nothing about the host said."""
    with silent_server() as port:
        app = create_app(
            {
                "SPAREKEY_ENV": "test",
                "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://sparekey@127.0.0.1:{port}/hung",
            }
        )
        client = app.test_client()
        checks_before = sum(t.name == "readiness check" for t in threading.enumerate())
        for _ in range(2):
            started = time.monotonic()
            response = client.get("/readyz")
            assert time.monotonic() - started < 3 and response.status_code == 503
            assert response.get_json() == {
                "status": "unavailable",
                "checks": {"database": "failed", "schema": "failed"},
            }
            page = response.get_data(as_text=True)
            assert "127.0.0.1" not in page and str(port) not in page and "hung" not in page
        stuck = sum(t.name == "readiness check" for t in threading.enumerate()) - checks_before
        assert stuck <= 1
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app_through_relay(app_factory, relayed_database_url):
    """A migrated app whose every database connection goes through a relay the test can cut."""
    relay, url = relayed_database_url
    app = app_factory(
        SQLALCHEMY_DATABASE_URI=normalise_database_url(url),
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "hide_parameters": True},
    )
    migrate(app)
    try:
        yield app, relay
    finally:
        relay.resume()
        forget_migrations(app)


def test_readyz_answers_503_within_3_seconds_when_the_database_is_cut(app_through_relay):
    app, relay = app_through_relay
    client = app.test_client()
    assert timed_readyz(client)[0] == 200
    relay.cut()
    status, body, elapsed = timed_readyz(client)
    assert status == 503 and elapsed < 3
    assert body == {"status": "unavailable", "checks": {"database": "failed", "schema": "failed"}}
    relay.resume()
    status, body, _ = timed_readyz(client)
    assert status == 200, body
    assert body["checks"] == {"database": "ok", "schema": "ok"}


# --- Redis at start-up ----------------------------------------------------------------------------


def limited(tmp_path, storage: str, **config):
    return create_app(
        {
            "SPAREKEY_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'limited.db'}",
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": storage,
            **config,
        }
    )


def test_start_up_refuses_a_redis_that_does_not_answer(tmp_path):
    port = closed_port()
    with pytest.raises(RuntimeError) as refused:
        limited(tmp_path, f"redis://:not-for-logs@127.0.0.1:{port}/0")
    message = str(refused.value)
    assert f"127.0.0.1:{port}" in message and "RATELIMIT_FALLBACK_OK=1" in message
    assert "not-for-logs" not in message


def test_start_up_accepts_an_unreachable_redis_with_fallback_ok(tmp_path, monkeypatch):
    """RATELIMIT_FALLBACK_OK=1: the app starts, says so once, and /readyz shows Redis red."""
    monkeypatch.setenv("RATELIMIT_FALLBACK_OK", "1")
    with Lines("sparekey.ratelimit") as lines:
        app = limited(tmp_path, f"redis://127.0.0.1:{closed_port()}/0")
    assert len(lines.at(logging.WARNING)) == 1 and UNREACHABLE in lines.at(logging.WARNING)[0]
    status, body, elapsed = timed_readyz(app.test_client())
    assert status == 503 and elapsed < 3
    assert body["checks"]["redis"] == "failed"
    with app.app_context():
        db.engine.dispose()


def test_gunicorn_exits_non_zero_when_redis_does_not_answer(tmp_path):
    """What `make serve` does with a mistyped Redis URL: no server, a non-zero exit, the reason
    in the error log; with RATELIMIT_FALLBACK_OK=1 it serves, /readyz red."""
    env = gunicorn_launcher.environment(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
            "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{closed_port()}/0",
            "WEB_CONCURRENCY": "1",
            "HOST": "127.0.0.1",
            "PORT": "0",
            "GUNICORN_ACCESSLOG": "off",
        }
    )
    spec = "app:create_app({'SPAREKEY_ENV': 'test', 'RATELIMIT_ENABLED': True})"
    result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", spec],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "RATELIMIT_FALLBACK_OK=1" in result.stderr
    with gunicorn_launcher.gunicorn(
        tmp_path, {**env, "RATELIMIT_FALLBACK_OK": "1"}, 1, spec
    ) as base:
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(base + "/readyz", timeout=10)
        assert answer.value.code == 503
        assert b'"redis":"failed"' in answer.value.read().replace(b" ", b"")


# --- Redis while the app runs ---------------------------------------------------------------------


def test_a_redis_cut_is_one_warning_and_a_red_readyz_and_its_return_counts_in_redis_again(
    app_factory,
):
    real = urlsplit(redis_url())
    direct = redis.Redis.from_url(redis_url())
    prefix = f"sparekey-health-{uuid.uuid4().hex}"

    def keys() -> list:
        return direct.keys(f"*{prefix}*")

    try:
        with relay_to(real.hostname or "127.0.0.1", real.port or 6379) as relay:
            app = app_factory(
                "redis-cut.db",
                METRICS_TOKEN=TOKEN,
                RATELIMIT_ENABLED=True,
                RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{relay.port}{real.path or '/0'}",
                RATELIMIT_KEY_PREFIX=prefix,
            )
            migrate(app)
            client = app.test_client()
            person = Person(app.test_client())
            assert person.login("nobody0", "some password").status_code == 200
            assert keys(), "the limit is counted in Redis"
            assert timed_readyz(client)[1]["checks"]["redis"] == "ok"
            fallbacks = metric(client, "sparekey_ratelimit_storage_fallbacks_total")
            direct.delete(*keys())

            relay.cut()
            with Lines("sparekey.ratelimit") as lines:
                statuses = [person.login(f"nobody{n}", "x").status_code for n in range(1, 5)]
                assert statuses == [200] * 4
                status, body, elapsed = timed_readyz(client)
            assert lines.at(logging.WARNING) == [UNREACHABLE]
            assert keys() == []
            assert status == 503 and elapsed < 3
            assert body["checks"] == {"database": "ok", "schema": "ok", "redis": "failed"}
            assert metric(client, "sparekey_ratelimit_storage_fallbacks_total") == fallbacks + 1
            assert metric(client, "sparekey_ratelimit_fallback_processes") == 1

            relay.resume()
            with Lines("sparekey.ratelimit") as lines:
                # Flask-Limiter asks Redis again after 1, 2, 4 ... seconds of fall-back.
                give_up = time.monotonic() + 70
                while not keys():
                    assert time.monotonic() < give_up, "the limits never went back to Redis"
                    assert person.login("nobody9", "x").status_code == 200
                    time.sleep(0.5)
            assert lines.at(logging.INFO) == [
                "rate-limit storage reachable again, counting in Redis"
            ]
            assert metric(client, "sparekey_ratelimit_fallback_processes") == 0
            assert timed_readyz(client)[0] == 200
            forget_migrations(app)
    finally:
        if keys():
            direct.delete(*keys())
        direct.close()
