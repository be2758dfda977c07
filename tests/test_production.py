"""Production shape: database URLs, SQLite WAL, /healthz and /readyz, gunicorn with several
workers, Redis."""

from __future__ import annotations

import json
import os
import runpy
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app import create_app
from config import Config, engine_options, normalise_database_url
from extensions import db
from models import BackupCode
from tests.helpers import PASSWORD, Person, give_codes, make_user
from tools import gunicorn as gunicorn_launcher
from tools.live import Browser, race

ROOT = Path(__file__).resolve().parent.parent


# --- database URLs and engines ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@db.example:5432/app", "postgresql+psycopg://u:p@db.example:5432/app"),
        ("postgresql://u@127.0.0.1/app", "postgresql+psycopg://u@127.0.0.1/app"),
        ("postgresql+psycopg://u@h/app", "postgresql+psycopg://u@h/app"),
        ("sqlite:////srv/sparekey.db", "sqlite:////srv/sparekey.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_database_urls_are_normalised_to_psycopg_3(given, used):
    assert normalise_database_url(given) == used


def test_postgresql_hides_parameters_and_sends_no_ping_per_check_out(monkeypatch):
    """A dropped connection is found at check-out without a round trip, or retried once
    (tests/test_connection_retry.py), instead of a ping before every request."""
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.example/app")
    values = Config.from_environment()
    assert values["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/app"
    assert values["SQLALCHEMY_ENGINE_OPTIONS"] == {"hide_parameters": True}
    # The class default is not changed by reading the environment.
    assert Config.SQLALCHEMY_ENGINE_OPTIONS == {"hide_parameters": True}
    assert "pool_pre_ping" not in engine_options("sqlite:///x.db", {})


def test_a_sqlite_file_database_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    """Readers do not block the writer, and a busy writer makes others wait, not fail."""
    app = create_app(
        {"SPAREKEY_ENV": "test", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'wal.db'}"}
    )
    with app.app_context():
        db.create_all()
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        db.session.remove()
        db.engine.dispose()


# --- /healthz ----------------------------------------------------------------------------------


def test_healthz_answers_ok_when_the_process_answers(client):
    """Liveness only; the database is /readyz's business (tests/test_health.py)."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_readyz_answers_503_when_the_database_is_unreachable(tmp_path, caplog):
    missing = tmp_path / "no-such-directory" / "sparekey.db"
    app = create_app({"SPAREKEY_ENV": "test", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{missing}"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "unavailable",
        "checks": {"database": "failed", "schema": "failed"},
    }
    assert str(missing) not in caplog.text
    with app.app_context():
        db.engine.dispose()


# --- gunicorn.conf.py --------------------------------------------------------------------------


def gunicorn_settings(monkeypatch, **env: str) -> dict:
    for name in ("HOST", "PORT", "WEB_CONCURRENCY", "GUNICORN_ACCESSLOG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_settings_follow_the_environment(monkeypatch):
    settings = gunicorn_settings(monkeypatch, HOST="10.0.0.5", PORT="8080", WEB_CONCURRENCY="3")
    assert settings["bind"] == "10.0.0.5:8080"
    assert settings["workers"] == 3
    assert settings["wsgi_app"] == "app:create_app()"
    assert settings["timeout"] > 0 and settings["keepalive"] > 0
    defaults = gunicorn_settings(monkeypatch)
    assert defaults["bind"] == "127.0.0.1:8000"
    assert 1 <= defaults["workers"] <= defaults["MAX_DEFAULT_WORKERS"]


def test_gunicorn_access_log_leaves_out_query_strings_and_referers(monkeypatch):
    log_format = gunicorn_settings(monkeypatch)["access_log_format"]
    assert "%(U)s" in log_format
    for carries_query_or_referer in ("%(r)s", "%(q)s", "%(f)s", "%({raw_uri}e)s"):
        assert carries_query_or_referer not in log_format


# --- several gunicorn workers on one database ---------------------------------------------------


def gunicorn(tmp_path: Path, database_uri: str, app_spec: str, workers: int):
    """bench/server.py's launcher (gunicorn.conf.py, a free port, /healthz), with test settings."""
    env = {
        **os.environ,
        "SPAREKEY_ENV": "test",
        "DATABASE_URL": database_uri,
        "PASSWORD_BCRYPT_COST": "4",
        "BACKUP_CODE_BCRYPT_COST": "4",
    }
    return gunicorn_launcher.gunicorn(tmp_path, env, workers, app_spec)


def test_four_gunicorn_workers_let_exactly_one_of_twenty_simultaneous_uses_in(app, tmp_path):
    """One code, twenty clients at once, four processes: the conditional UPDATE admits one.

    The back-off is lifted (an argument to the factory) so that all twenty reach the UPDATE.
    """
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    user_id = make_user(app, "alice", PASSWORD)
    codes = give_codes(app, user_id)
    spec = "app:create_app({'FAILURES_BEFORE_BACKOFF': 1000})"
    with gunicorn(tmp_path, uri, spec, workers=4) as base:
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            assert response.status == 200
            assert json.loads(response.read()) == {"status": "ok"}
        browsers = [Browser(base) for _ in range(20)]
        tokens = [browser.ready_to_enter_code("alice") for browser in browsers]
        results = race(browsers, tokens, [codes[4]] * 20)
    statuses = [status for status, _, _ in results]
    assert all(status < 500 for status in statuses), statuses
    winners = [r for r in results if r[0] == 302 and r[1].endswith("/accounts/password/new/")]
    assert len(winners) == 1, statuses
    losers = [body for status, _, body in results if status == 200]
    assert len(losers) == 19 and all("That code did not work." in body for body in losers)
    with app.app_context():
        used = db.session.scalars(select(BackupCode.number).where(BackupCode.used_at.is_not(None)))
        assert list(used) == [5]
    # bench/server.py names the access log after the worker count.
    access_log = (tmp_path / "access-4w.log").read_text()
    assert "/healthz" in access_log and "?" not in access_log


# --- Redis: one per-IP limit shared by several processes ----------------------------------------

SPRAY = """
import json, sys
from app import create_app
from tests.helpers import Person
app = create_app({
    "SPAREKEY_ENV": "test",
    "SQLALCHEMY_DATABASE_URI": sys.argv[1],
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": sys.argv[2],
    "RATELIMIT_KEY_PREFIX": sys.argv[3],
})
person = Person(app.test_client())
print(json.dumps([person.login(f"user{n}", "some password").status_code
                  for n in range(int(sys.argv[4]))]))
"""


def spray_log_ins(database_uri: str, storage: str, prefix: str, count: int) -> list[int]:
    """`count` log-in posts from 127.0.0.1 in a separate process (its own app and limiter)."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-c", SPRAY, database_uri, storage, prefix, str(count)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_two_app_processes_share_the_per_ip_limit_through_redis(app):
    """30 log-in posts a minute per address, counted once across processes, not per process."""
    storage = os.environ.get("RATELIMIT_STORAGE_URI", "")
    if not storage.startswith("redis://"):
        pytest.skip(
            "RATELIMIT_STORAGE_URI is not a redis:// URL; set it to run this test "
            "(.ci/run's second pass sets redis://127.0.0.1:6379/0)"
        )
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    prefix = f"sparekey-test-{uuid.uuid4().hex}"
    assert spray_log_ins(uri, storage, prefix, 20) == [200] * 20
    assert spray_log_ins(uri, storage, prefix, 15) == [200] * 10 + [429] * 5
    # The same second process on its own in-memory store would not have known about the first.
    assert spray_log_ins(uri, "memory://", prefix, 15) == [200] * 15


def test_an_unreachable_redis_falls_back_to_per_process_limits(tmp_path):
    """A Redis outage must not turn every log-in into a 500: each process limits on its own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    limited = create_app(
        {
            "SPAREKEY_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'fallback.db'}",
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{closed_port}/0",
            # Else it would refuse to start (tests/test_health.py).
            "RATELIMIT_FALLBACK_OK": True,
        }
    )
    with limited.app_context():
        db.create_all()
    attacker = Person(limited.test_client())
    statuses = [attacker.login(f"user{n}", "some password").status_code for n in range(32)]
    assert statuses == [200] * 30 + [429] * 2
    with limited.app_context():
        db.engine.dispose()


def test_the_derived_pepper_can_be_pinned_before_rotating_secret_key(app_factory):
    """docs/operations.md: PEPPER=hex:<derived> keeps every password and code working."""
    import hashlib
    import hmac

    from tests.helpers import PASSWORD, Person, current_keys, give_codes, make_user

    old = app_factory("pepper.db")
    user_id = make_user(old, "alice", PASSWORD)
    codes = give_codes(old, user_id)
    derived = hmac.new(old.config["SECRET_KEY"].encode(), b"sparekey pepper v1", hashlib.sha256)
    rotated = app_factory(
        "pepper.db", SECRET_KEY="a brand new secret key " * 2, PEPPER="hex:" + derived.hexdigest()
    )
    # fresh_tables keeps a SQLite file's rows; on PostgreSQL the second app starts empty.
    if not rotated.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        user_id = make_user(old, "alice", PASSWORD)
        codes = give_codes(old, user_id)
    with old.app_context(), rotated.app_context():
        assert current_keys().pepper == derived.digest()
    person = Person(rotated.test_client())
    assert person.login("alice", PASSWORD).status_code == 302
    person.logout()
    person.start_recovery("alice")
    assert person.enter_code(codes[0]).location == "/accounts/password/new/"
