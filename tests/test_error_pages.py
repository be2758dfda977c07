"""Error pages that never crash: every one (404, 405, 400, an expired form, 413, 429, 500) renders
from a standalone template after a rollback, with neither the database nor `current_user`, and is
never kept by a cache. The "A backup code was used" notice, which every page of the account reads
from the database, is left out of an error page and never raises.

The database fails in two ways here: every statement of the app's engine raises OperationalError
while a switch is on (SQLite and PostgreSQL alike), from the start of a request or from just
after the app's own request hooks (the signed-in account is loaded then); and, on PostgreSQL, a
TCP relay between gunicorn and the database is cut.
"""

from __future__ import annotations

import http.client
import os
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask, request
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

import tools.gunicorn as gunicorn_launcher
from extensions import db
from models import SecurityEvent, User
from tests.helpers import PASSWORD, Person, csrf_from, make_user
from tools.live import Browser

NOTICE = "A backup code was used"
STYLESHEET = '<link rel="stylesheet" href="/static/css/app.css">'
# Only base.html (which needs the account) marks a signed-in page so.
SIGNED_IN_LAYOUT = "has-bottom-bar"
# A request with this header meets a dead database once the app's own request hooks are done.
CUT_AFTER_HOOKS = "X-Test-Cut-Database"


class Outage:
    """While `down`, every statement the app's engine sends raises OperationalError (only those
    that mention `only`, when given)."""

    def __init__(self, app: Flask, only: str = "") -> None:
        self.down = False
        self.only = only
        self.failed = 0
        with app.app_context():
            self.engine = db.engine

        # Registered after create_app's hooks, so it runs after them (the account is loaded).
        @app.before_request
        def cut_after_the_app_hooks() -> None:
            if request.headers.get(CUT_AFTER_HOOKS):
                self.down = True

    def fail(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.down and self.only in statement.lower():
            self.failed += 1
            raise OperationalError(statement, {}, Exception("the database is unreachable"))

    def __enter__(self) -> Outage:
        event.listen(self.engine, "before_cursor_execute", self.fail)
        return self

    def __exit__(self, *exc_info) -> None:
        event.remove(self.engine, "before_cursor_execute", self.fail)


def with_code_notice(app: Flask, user_id: int) -> None:
    """A backup code was used from another session: every page of the account reads the notice
    from the database (what used to take the error page down with it)."""
    with app.app_context():
        used = SecurityEvent(user_id=user_id, kind="backup_code_used", detail="code #3, 9 left")
        db.session.add(used)
        db.session.flush()
        user = db.session.get(User, user_id)
        user.code_notice_event_id, user.code_notice_session_id = used.id, None
        db.session.commit()


def signed_in_with_notice(app: Flask) -> Person:
    with_code_notice(app, make_user(app))
    person = Person(app.test_client())
    assert person.login().status_code == 302
    assert NOTICE in person.client.get("/settings/").get_data(as_text=True)
    return person


def assert_error_page(response, status: int, words: str) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == status, body
    assert words in body and STYLESHEET in body and 'class="top-bar"' in body
    assert SIGNED_IN_LAYOUT not in body and NOTICE not in body and "Traceback" not in body
    assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def served(app: Flask) -> Flask:
    """Exceptions become the 500 page, as under gunicorn, instead of reaching the test."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def test_a_database_error_gives_a_signed_in_user_the_styled_500_page(served):
    """The page's own read fails after the account was loaded: the standalone 500 page, which
    reads neither the account nor its notice; the same page works once the database is back."""
    outage = Outage(served)
    person = signed_in_with_notice(served)
    with outage:
        response = person.client.get("/settings/security/", headers={CUT_AFTER_HOOKS: "1"})
        outage.down = False
    assert outage.failed >= 1
    assert_error_page(response, 500, "Something went wrong")
    assert "happened completely or not at all" in response.get_data(as_text=True)
    page = person.client.get("/settings/security/")
    assert page.status_code == 200 and NOTICE in page.get_data(as_text=True)


# (what, path, method, extra request arguments, from the start, status, words on the page)
ERRORS = [
    ("not found", "/no/such/page/", "GET", {}, False, 404, "Page not found"),
    # A file's 404 too: files are the answers a browser may otherwise keep.
    ("no such file", "/static/no-such-file.css", "GET", {}, False, 404, "Page not found"),
    ("method", "/settings/", "DELETE", {}, False, 405, "Not allowed"),
    ("nul", "/settings/?q=%00", "GET", {}, True, 400, "The form could not be read"),
    ("expired form", "/accounts/logout/", "POST", {}, True, 400, "This form expired"),
    (
        "too large",
        "/accounts/logout/",
        "POST",
        {"data": {"filler": "x" * 70_000}},
        True,
        413,
        "Too much data",
    ),
]


@pytest.mark.parametrize(
    ("path", "method", "extra", "from_the_start", "status", "words"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_error_pages_render_for_a_signed_in_user_without_the_database(
    served, path, method, extra, from_the_start, status, words
):
    """Refusals made before anything reads the database (a NUL, an expired form, too much data)
    meet a database that is down from the start; a page that is not there, or not for that
    method, meets one that fails once the account is loaded (the app's request hooks load it
    first)."""
    outage = Outage(served)
    person = signed_in_with_notice(served)
    headers = {} if from_the_start else {CUT_AFTER_HOOKS: "1"}
    with outage:
        outage.down = from_the_start
        response = person.client.open(path, method=method, headers=headers, **extra)
        outage.down = False
    assert_error_page(response, status, words)
    assert person.client.get("/settings/").status_code == 200


def test_the_429_page_renders_for_a_signed_in_user_without_the_database(app_factory):
    """A route's per-address limit refuses as the view is called, after the account was loaded;
    the database fails from then on, and the 429 page needs none of it."""
    app = app_factory(
        "limited.db",
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        PROPAGATE_EXCEPTIONS=False,
    )
    outage = Outage(app)
    person = signed_in_with_notice(app)
    token = csrf_from(person.client.get("/settings/").get_data(as_text=True))
    form = {"csrf_token": token, "password": "x"}
    # "Change password" allows 10 posts a minute from one address.
    statuses = [person.client.post("/settings/security/password/", data=form) for _ in range(10)]
    assert 429 not in [response.status_code for response in statuses]
    with outage:
        headers = {CUT_AFTER_HOOKS: "1"}
        response = person.client.post("/settings/security/password/", data=form, headers=headers)
        outage.down = False
    assert_error_page(response, 429, "Too many requests")


def test_a_failing_code_notice_leaves_the_notice_out_not_the_page(served, caplog):
    """Only the notice's own read fails: the page is served without it (after a rollback, so
    the rest of the page reads on), with a warning; the next page shows it again."""
    outage = Outage(served, only="security_events")
    person = signed_in_with_notice(served)
    with outage, caplog.at_level("WARNING"):
        response = person.client.get("/settings/", headers={CUT_AFTER_HOOKS: "1"})
        outage.down = False
    assert outage.failed == 1
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and NOTICE not in body and SIGNED_IN_LAYOUT in body
    assert "code notice left out of a page: OperationalError" in caplog.text
    assert NOTICE in person.client.get("/settings/").get_data(as_text=True)


# --- a real outage: gunicorn, with its database connections through a relay that is cut ---------


def fetch(base: str, browser: Browser, path: str, data: dict | None = None):
    """(status, Cache-Control, body) of a GET, or a POST of `data`, with the browser's cookies."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    headers = {"Cookie": browser.cookie_header()}
    body = None
    if data is not None:
        body = urlencode(data).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request("POST" if data is not None else "GET", path, body, headers)
        response = connection.getresponse()
        return response.status, response.getheader("Cache-Control"), response.read().decode()
    finally:
        connection.close()


def test_gunicorn_answers_styled_error_pages_while_the_database_is_cut(
    app, tmp_path, relayed_database_url
):
    """Signed in, then the database connection is cut: a page that reads the database gets the
    styled 500 page and a form the expired-form page, both no-store, never gunicorn's bare
    "Internal Server Error"; the access log keeps each path and the client's address; once the
    relay is back, the same pages work."""
    relay, url = relayed_database_url
    make_user(app)
    env = {
        **os.environ,
        "SPAREKEY_ENV": "test",
        "DATABASE_URL": url,
        "PASSWORD_BCRYPT_COST": "4",
        "BACKUP_CODE_BCRYPT_COST": "4",
    }
    spec = "app:create_app({'PROPAGATE_EXCEPTIONS': False})"
    with gunicorn_launcher.gunicorn(tmp_path, env, 1, spec) as base:
        browser = Browser(base)
        assert browser.log_in("alice", PASSWORD) == 302
        relay.cut()
        try:
            status, cache, body = fetch(base, browser, "/settings/security/")
            assert status == 500 and "Something went wrong" in body and STYLESHEET in body
            assert cache == "no-store" and "Internal Server Error" not in body
            status, cache, body = fetch(base, browser, "/accounts/logout/", {"csrf_token": "x"})
            assert status == 400 and "This form expired" in body and STYLESHEET in body
            assert cache == "no-store"
        finally:
            relay.resume()
        assert fetch(base, browser, "/settings/security/")[0] == 200
    access = (tmp_path / "access-1w.log").read_text()
    for path, status in (("/settings/security/", "500"), ("/accounts/logout/", "400")):
        lines = [line for line in access.splitlines() if path in line and status in line]
        assert lines and all("127.0.0.1" in line for line in lines), access
