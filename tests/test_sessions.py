"""Server-side sessions: timeouts, login activity, headers and error pages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.debug import DebuggedApplication

from app import create_app
from extensions import db
from models import UserSession
from tests.helpers import PASSWORD, Person, count, make_user

ROOT = Path(__file__).resolve().parents[1]


def sessions_count(app) -> int:
    return count(app, UserSession)


def test_idle_timeout_after_30_minutes(app, person, user, frozen_clock):
    """Checklist 59."""
    person.login()
    frozen_clock(minutes=29)
    assert person.client.get("/settings/").status_code == 200
    frozen_clock(minutes=58)
    assert person.client.get("/settings/").status_code == 200
    frozen_clock(minutes=88, seconds=1)
    response = person.client.get("/settings/")
    assert response.status_code == 302 and response.location.startswith("/accounts/login/")
    assert sessions_count(app) == 0


def test_each_app_uses_its_own_session_timeout(app, app_factory, frozen_clock):
    """Two apps in one process: each reads its own idle timeout when it loads a session (the
    loader once kept the timeout of the last app made)."""
    longer = app_factory("longer.db", SESSION_IDLE_TIMEOUT_SECONDS=3600)
    make_user(app)
    if longer.config["SQLALCHEMY_DATABASE_URI"] != app.config["SQLALCHEMY_DATABASE_URI"]:
        make_user(longer)
    short_lived, long_lived = Person(app.test_client()), Person(longer.test_client())
    short_lived.login()
    long_lived.login()
    frozen_clock(minutes=40)
    assert short_lived.client.get("/settings/").status_code == 302
    assert long_lived.client.get("/settings/").status_code == 200


def test_absolute_timeout_after_12_hours_even_when_active(app, person, user, frozen_clock):
    person.login()
    for minutes in range(20, 12 * 60, 20):
        frozen_clock(minutes=minutes)
        assert person.client.get("/settings/").status_code == 200, minutes
    frozen_clock(hours=12, seconds=1)
    assert person.client.get("/settings/").status_code == 302


def test_login_activity_lists_sessions_and_logs_out_others(app, user):
    laptop, phone = Person(app.test_client()), Person(app.test_client())
    laptop.login(
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}
    )
    phone.login(
        headers={
            "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"
        }
    )
    page = laptop.client.get("/settings/security/sessions/").get_data(as_text=True)
    assert "Mobile Safari on iOS" in page and "This device" in page
    with app.app_context():
        secret_ids = db.session.scalars(select(UserSession.id)).all()
    assert not any(secret in page for secret in secret_ids)
    response = laptop.submit(
        "/settings/security/sessions/",
        {"others-submit": "1", "others-password": PASSWORD},
        action="/settings/security/sessions/",
    )
    assert response.status_code == 302
    assert phone.client.get("/settings/").status_code == 302
    assert laptop.client.get("/settings/").status_code == 200
    assert sessions_count(app) == 1


def test_login_activity_leaves_out_sessions_past_a_timeout(app, user, frozen_clock):
    """A phone left idle is no longer a session: its cookie is refused, and the list agrees."""
    phone, laptop = Person(app.test_client()), Person(app.test_client())
    phone.login(
        headers={
            "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"
        }
    )
    frozen_clock(minutes=10)
    laptop.login(
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36"}
    )
    page = laptop.client.get("/settings/security/sessions/").get_data(as_text=True)
    assert "Mobile Safari on iOS" in page
    frozen_clock(minutes=35)
    page = laptop.client.get("/settings/security/sessions/").get_data(as_text=True)
    assert "Mobile Safari on iOS" not in page and "This device" in page
    assert sessions_count(app) == 2  # the row is still there until its cookie returns or prune
    assert phone.client.get("/settings/").status_code == 302


def test_log_out_one_session_by_its_public_id(app, user):
    laptop, phone = Person(app.test_client()), Person(app.test_client())
    laptop.login()
    phone.login()
    with app.app_context():
        phone_row = db.session.scalars(select(UserSession).order_by(UserSession.created_at)).all()
        public_ids = [row.public_id for row in phone_row]
    page = laptop.client.get("/settings/security/sessions/").get_data(as_text=True)
    other = next(pid for pid in public_ids if f'value="{pid}"' in page)
    laptop.submit("/settings/security/sessions/", {"one-session": other, "one-submit": "1"})
    assert phone.client.get("/settings/").status_code == 302
    assert laptop.client.get("/settings/").status_code == 200


def test_security_headers_on_every_page(client):
    """Checklist 68/70."""
    for url in (
        "/",
        "/accounts/login/",
        "/accounts/signup/",
        "/accounts/password/reset/",
        "/nope/x",
    ):
        response = client.get(url)
        csp = response.headers["Content-Security-Policy"]
        for part in (
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
            "script-src 'self'",
        ):
            assert part in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
        assert "charset=utf-8" in response.headers["Content-Type"]


def test_templates_have_no_inline_script_or_style(client):
    for url in ("/", "/accounts/login/", "/accounts/signup/"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>" not in html and "style=" not in html and "<style" not in html
        assert "onclick" not in html


def test_cookie_flags_in_production(tmp_path, monkeypatch):
    """Checklist 54."""
    monkeypatch.setenv("SECRET_KEY", "x" * 48)
    monkeypatch.setenv("SITE_URL", "https://sparekey.example")
    app = create_app(
        {"SPAREKEY_ENV": "production", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}"}
    )
    response = app.test_client().get("/accounts/login/", base_url="https://localhost")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_production_runs_without_debug_and_without_a_console(tmp_path, monkeypatch):
    """Checklist 71: debug off even when FLASK_DEBUG is set, no debugger console, and an error
    inside a view is the plain 500 page."""
    monkeypatch.setenv("SECRET_KEY", "x" * 48)
    monkeypatch.setenv("SITE_URL", "https://sparekey.example")
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = create_app(
        {"SPAREKEY_ENV": "production", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}"}
    )
    assert app.debug is False and app.config["DEBUG"] is False
    assert not isinstance(app.wsgi_app, DebuggedApplication)

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    client = app.test_client()
    for path in ("/console", "/console?__debugger__=yes&cmd=resource&f=style.css"):
        # No debugger answers: /console is just a name, like any profile address.
        response = client.get(path, follow_redirects=True)
        body = response.get_data(as_text=True)
        assert "Werkzeug" not in body and "Interactive Console" not in body
        assert response.request.path in ("/accounts/login/", "/console/")
    response = client.get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500 and "Something went wrong" in body
    assert "Traceback" not in body and "secret internals" not in body and "Werkzeug" not in body
    assert "Server" not in response.headers


@pytest.mark.parametrize(
    ("debug_env", "options"),
    [({"FLASK_DEBUG": "1"}, []), ({}, ["--debug"]), ({}, ["--debugger", "--no-reload"])],
)
def test_flask_run_never_serves_the_debugger_console(tmp_path, debug_env, options):
    """Checklist 71: `flask run` would wrap the app in Werkzeug's debugger (its console runs
    code); the app refuses to be loaded by it and says which command serves it instead."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
        **debug_env,
        "SPAREKEY_ENV": "test",
    }
    flask = Path(sys.executable).with_name("flask")
    result = subprocess.run(  # noqa: S603 - our own interpreter's flask, fixed arguments
        [flask, "--app", "app", "run", "--port", "0", *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "use `make run` (development)" in result.stderr
    assert "Running on" not in result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        create_app({"SPAREKEY_ENV": "production"})


def test_production_refuses_to_start_without_its_own_address(monkeypatch):
    """Mailed links are never built from a Host a request chose: production needs SITE_URL or
    TRUSTED_HOSTS (or SERVER_NAME)."""
    for name in ("SITE_URL", "TRUSTED_HOSTS", "SERVER_NAME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="Set SITE_URL"):
        create_app({"SPAREKEY_ENV": "production", "SECRET_KEY": "x" * 48})


def test_unused_methods_and_unknown_pages(client):
    """Checklist 69/71."""
    assert client.open("/accounts/login/", method="TRACE").status_code == 405
    assert client.delete("/accounts/login/").status_code == 405
    assert client.options("/accounts/login/").status_code == 405
    assert client.options("/").status_code == 405
    response = client.get("/does/not/exist")
    assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True)


def test_server_errors_show_a_plain_page(app):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong" in body
    assert "Traceback" not in body and "secret internals" not in body
