"""Logs: one JSON object per line, a request id on every line of a request, no secret ever.

In-process tests read the records through pytest's caplog and the app's formatter (logs.py); the
gunicorn test runs the real server with gunicorn.conf.py and reads everything it wrote.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pyotp
import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from app import create_app
from blueprints.context import app_context_of
from extensions import db
from logs import JsonLines, access_fields, redact
from models import SecurityEvent
from security import events
from tests.helpers import (
    PASSWORD,
    Person,
    codes_from,
    database_uri,
    fresh_tables,
    sheet_id_from,
    wrong_code,
)
from tools import gunicorn as gunicorn_launcher
from tools.live import Browser, csrf_from

NEW_ID = re.compile(r"[0-9a-f]{32}")
CODE_PAGE = "/accounts/password/reset/backup-code/"


def security_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sparekey.security"]


def as_json(record: logging.LogRecord) -> dict:
    line = JsonLines().format(record)
    assert "\n" not in line and "\r" not in line
    return json.loads(line)


def name_hash(identifier: str) -> str:
    return hashlib.sha256(identifier.strip().lower().encode()).hexdigest()[:16]


# --- the request id, in-process -----------------------------------------------------------------


def test_every_answer_carries_a_new_request_id(client):
    first = client.get("/accounts/login/").headers["X-Request-ID"]
    second = client.get("/no-such-page/").headers["X-Request-ID"]
    assert NEW_ID.fullmatch(first) and NEW_ID.fullmatch(second) and first != second


def test_an_incoming_request_id_is_kept_only_from_a_trusted_proxy(client, app_factory):
    sent = {"X-Request-ID": "edge-7f3a.b_c-9"}
    untrusted = client.get("/accounts/login/", headers=sent).headers["X-Request-ID"]
    assert untrusted != "edge-7f3a.b_c-9" and NEW_ID.fullmatch(untrusted)
    behind_proxy = app_factory(TRUSTED_PROXIES=1).test_client()
    assert behind_proxy.get("/accounts/login/", headers=sent).headers["X-Request-ID"] == (
        "edge-7f3a.b_c-9"
    )
    for invalid in ("has space", "x" * 65, "ünïcode", "a,b", 'quote"d', "tab\there", "slash/path"):
        answered = behind_proxy.get("/accounts/login/", headers={"X-Request-ID": invalid})
        assert NEW_ID.fullmatch(answered.headers["X-Request-ID"]), invalid


def test_the_security_lines_of_a_request_carry_its_id(app_factory, caplog):
    caplog.set_level(logging.INFO)
    app = app_factory(TRUSTED_PROXIES=1)
    person = Person(app.test_client())
    person.signup("carol", PASSWORD)
    person.logout()
    caplog.clear()
    person.login("carol", "not the password", headers={"X-Request-ID": "trace-1"})
    person.login("carol", PASSWORD, headers={"X-Request-ID": "trace-2"})
    lines = [as_json(record) for record in security_records(caplog)]
    by_event = {line["event"]: line for line in lines}
    assert by_event["login_failed"]["request_id"] == "trace-1"
    assert by_event["logged_in"]["request_id"] == "trace-2"
    assert by_event["logged_in"]["recorded"] is True
    # Outside a request a line has no id.
    events.log_event("outside", None, "success")
    assert "request_id" not in as_json(security_records(caplog)[-1])


def test_an_event_line_is_written_only_when_its_row_is(app, user, caplog):
    caplog.set_level(logging.INFO)
    with app.app_context():
        ctx = app_context_of(app)
        events.record_event(ctx, user, events.LOGGED_OUT, "rolled back")
        ctx.db.rollback()
        assert security_records(caplog) == []
        events.record_event(ctx, user, events.LOGGED_OUT, "committed")
        assert security_records(caplog) == []
        ctx.db.commit()
    [line] = [as_json(record) for record in security_records(caplog)]
    assert line["event"] == "logged_out" and line["detail"] == "committed"
    assert line["recorded"] is True and line["user_id"] == user


def test_a_throttled_refusal_names_the_counter_kind_and_a_hash_of_the_typed_name(
    app, user, user_codes, frozen_clock, caplog
):
    caplog.set_level(logging.INFO)
    person = Person(app.test_client())
    person.start_recovery("  Alice@Example.com ")
    for index in range(6):
        person.enter_code(wrong_code(user_codes, index))
    [throttled] = [r for r in security_records(caplog) if r.event == "throttled"]
    line = as_json(throttled)
    assert line["counter_kind"] == "code"
    assert line["identifier_hash"] == name_hash("alice@example.com")
    assert line["ip"] == "127.0.0.1" and line["outcome"] == "refused"
    assert line["recorded"] is False and NEW_ID.fullmatch(line["request_id"])
    assert "alice" not in json.dumps(line).lower()


def test_a_refusal_by_the_limiter_is_one_line(app_factory, caplog):
    caplog.set_level(logging.INFO)
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    client = app.test_client()
    token = csrf_from(client.get("/accounts/login/").get_data(as_text=True))
    statuses = [
        client.post("/accounts/unlock/", data={"csrf_token": token, "identifier": "x"}).status_code
        for _ in range(6)
    ]
    assert statuses == [302] * 5 + [429]
    assert not [r for r in caplog.records if "exceeded" in r.getMessage()]
    [line] = [as_json(r) for r in security_records(caplog) if r.event == "rate_limited"]
    assert line["limit"] == "5 per 1 minute" and line["endpoint"] == "auth.unlock"
    assert line["ip"] == "127.0.0.1" and NEW_ID.fullmatch(line["request_id"])


def test_mailed_link_tokens_and_query_strings_stay_out_of_every_line(app):
    token = "SECRETLINK.abc-def_123"
    token_rules = [rule for rule in app.url_map.iter_rules() if "token" in rule.arguments]
    assert len(token_rules) >= 4
    for rule in token_rules:
        path = rule.rule.replace("<token>", token)
        assert token not in redact(path), rule.rule
        atoms = {"m": "GET", "U": path, "s": "200", "{x-request-id}o": "abc"}
        assert token not in json.dumps(access_fields(atoms))
        message = f"Error handling request {path}?next=/x&q=SECRETQUERY"
        record = logging.LogRecord("gunicorn.error", logging.ERROR, "", 0, message, None, None)
        formatted = JsonLines().format(record)
        assert token not in formatted and "SECRETQUERY" not in formatted


# --- a real gunicorn: every line, counted, and no secret ----------------------------------------

ADDRESS = "203.0.113.7"
NEW_PASSWORD = "a brand new passphrase"
WRONG_PASSWORD = "not my password at all"
LINK_TOKEN = "InRva2VuIg.Zx1Abc.NotARealLinkTokenButSecret"
QUERY_SECRET = "QuerySecret7Q3"


class Run:
    """One person's story over HTTP, keeping every secret it typed or was given."""

    def __init__(self, base: str, secret_key: str) -> None:
        self.base = base
        self.secret_key = secret_key
        self.browser = Browser(base, headers={"X-Forwarded-For": ADDRESS})
        self.secrets: set[str] = {PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, secret_key, LINK_TOKEN}
        self.secrets.add(QUERY_SECRET)
        self.numeric: set[str] = set()
        self.session_decoder = _session_decoder(secret_key)
        self.devices = URLSafeSerializer(secret_key, salt="sparekey device cookie")

    def page(self, path: str) -> str:
        status, _, body = self.browser.get(path)
        assert status == 200, (path, status)
        self.keep_cookies()
        return body

    def submit(self, page: str, data: dict, action: str | None = None) -> tuple[int, str, str]:
        token = csrf_from(self.page(page))
        self.secrets.add(token)
        answer = self.browser.post(action or page, {"csrf_token": token, **data})
        self.keep_cookies()
        return answer

    def keep_cookies(self) -> None:
        """Every cookie value, and what the signed cookies carry: session token, CSRF secret,
        half-finished log-in token, device tokens."""
        for cookie in self.browser.jar:
            if not cookie.value:
                continue
            self.secrets.add(cookie.value)
            if cookie.name == "session":
                for key, value in self.session_decoder.loads(cookie.value).items():
                    if key in ("_user_id", "csrf_token", "pending_login") and value:
                        self.secrets.add(str(value))
            if cookie.name == "sparekey_device":
                self.secrets.update(self.devices.loads(cookie.value))

    def code(self, code: str) -> None:
        self.secrets.update({code, f"{code[:4]} {code[4:]}"})


def _session_decoder(secret_key: str):
    decoder = Flask("decoder")
    decoder.secret_key = secret_key
    return SecureCookieSessionInterface().get_signing_serializer(decoder)


def story(run: Run) -> dict:
    """Sign up, get codes, log in wrong and right, guess codes until throttled, recover with a
    right code, set a new password, turn on an authentication app, then hit the limiter."""
    answer = run.submit("/accounts/signup/", {"username": "alice", "password": PASSWORD})
    assert answer[0] == 302, answer
    run.submit("/settings/security/two-factor/backup-codes/confirm/", {"password": PASSWORD})
    codes = codes_from(run.page("/settings/security/two-factor/backup-codes/new/"))
    assert len(codes) == 10
    for code in codes:
        run.code(code)
    saved_page = "/settings/security/two-factor/backup-codes/new/saved/"
    asked = int(re.search(r"Type code #(\d+) from your new sheet", run.page(saved_page))[1])
    sheet = sheet_id_from(run.page(saved_page))
    assert run.submit(saved_page, {"code": codes[asked - 1], "sheet": sheet})[0] == 302
    assert run.submit("/settings/", {}, action="/accounts/logout/")[0] == 302
    login = {"identifier": "alice", "password": WRONG_PASSWORD}
    assert run.submit("/accounts/login/", login)[0] == 200
    assert run.submit("/accounts/login/", {**login, "password": PASSWORD})[0] == 302
    assert run.submit("/settings/", {}, action="/accounts/logout/")[0] == 302

    run.submit("/accounts/password/reset/", {"identifier": "Alice", "use_backup_code": "1"})
    for index in range(6):
        guess = wrong_code(codes, 13572468 + index)
        run.code(guess)
        run.submit(CODE_PAGE, {"code": guess})
    for _ in range(10):
        time.sleep(1.1)
        status, location, _ = run.submit(CODE_PAGE, {"code": codes[7]})
        if status == 302:
            break
    assert location.endswith("/accounts/password/new/"), (status, location)
    new = {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert run.submit("/accounts/password/new/", new)[0] == 302

    app_page, setup = (
        "/settings/security/two-factor/app/",
        "/settings/security/two-factor/app/setup/",
    )
    assert run.submit(app_page, {"start-submit": "1"}, action=setup)[0] == 302
    grouped = re.search(r'class="setup-key"[^>]*>([A-Z2-7 ]+)<', run.page(setup))[1]
    key = grouped.replace(" ", "")
    run.secrets.update({key, grouped, key.lower()})
    app_code = pyotp.TOTP(key).now()
    run.numeric.add(app_code)
    turned_on = run.submit(setup, {"code": app_code, "password": NEW_PASSWORD, "submit": "1"})
    assert turned_on[0] in (302, 303), turned_on

    stranger = Run(run.base, run.secret_key)
    stranger.secrets = run.secrets
    stranger.browser.get(f"/accounts/login/?next=/settings/&probe={QUERY_SECRET}")
    stranger.browser.get(f"/accounts/secure/{LINK_TOKEN}")
    token = csrf_from(stranger.page("/accounts/login/"))
    run.secrets.add(token)
    limited = [
        stranger.browser.post("/accounts/unlock/", {"csrf_token": token, "identifier": "alice"})[0]
        for _ in range(6)
    ]
    assert limited == [302] * 5 + [429], limited
    return {
        "trusted": _request_id_answered(run.base, "proxy-trace.0042"),
        "replaced": _request_id_answered(run.base, "not valid!"),
    }


def _request_id_answered(base: str, sent: str) -> str:
    request = urllib.request.Request(
        base + "/accounts/login/", headers={"X-Request-ID": sent, "X-Forwarded-For": ADDRESS}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["X-Request-ID"]


def read_json_lines(path: Path) -> list[dict]:
    """Every line of a log file as JSON; a line that is not JSON fails the test. The launcher's
    own readiness line (tools/gunicorn.py, printed to stderr by the test harness) is skipped."""
    lines = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if text.startswith(gunicorn_launcher.READY):
            continue
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            pytest.fail(f"{path.name} line {number} is not JSON: {text!r}")
    return lines


@pytest.fixture(scope="module")
def gunicorn_run(tmp_path_factory):
    """The story against gunicorn (one worker, so the limiter counts in one place), once for the
    tests below: the run, what it answered, the stored events' kinds, and the error and access
    logs it wrote."""
    workdir = tmp_path_factory.mktemp("logging")
    app = create_app({"SPAREKEY_ENV": "test", "SQLALCHEMY_DATABASE_URI": database_uri(workdir)})
    fresh_tables(app)
    secret_key = secrets.token_urlsafe(48)
    env = gunicorn_launcher.environment(
        {
            "SPAREKEY_ENV": "test",
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SECRET_KEY": secret_key,
            "TRUSTED_PROXIES": "1",
            "PASSWORD_BCRYPT_COST": "4",
            "BACKUP_CODE_BCRYPT_COST": "4",
        }
    )
    spec = "app:create_app({'RATELIMIT_ENABLED': True})"
    with gunicorn_launcher.gunicorn(workdir, env, 1, spec) as base:
        run = Run(base, secret_key)
        answered = story(run)
    with app.app_context():
        rows = Counter(db.session.scalars(select(SecurityEvent.kind)))
        db.session.remove()
        db.engine.dispose()
    return run, answered, rows, workdir / "gunicorn-1w.err", workdir / "access-1w.log"


def test_gunicorn_writes_json_lines_and_one_per_stored_event(gunicorn_run):
    _, answered, rows, errors, access = gunicorn_run
    lines = read_json_lines(errors)
    requests = read_json_lines(access)
    assert any("Listening at" in line["message"] for line in lines)
    security = [line for line in lines if line["logger"] == "sparekey.security"]

    # One line per stored event, kind for kind.
    recorded = Counter(line["event"] for line in security if line["recorded"])
    assert recorded == rows and sum(rows.values()) >= 10
    assert {
        "signed_up",
        "login_failed",
        "logged_in",
        "backup_code_failed",
        "recovered_with_backup_code",
        "password_changed",
        "app_turned_on",
    } <= set(rows)
    assert all(NEW_ID.fullmatch(line["request_id"]) for line in security)

    # The throttled refusal: the kind, the typed name's hash, the client; not the name.
    [throttled] = [line for line in security if line["event"] == "throttled"]
    assert throttled["counter_kind"] == "code" and throttled["ip"] == ADDRESS
    assert throttled["identifier_hash"] == name_hash("alice")
    assert "alice" not in json.dumps(throttled).lower()
    [request] = [r for r in requests if r["request_id"] == throttled["request_id"]]
    assert (request["method"], request["path"], request["address"]) == ("POST", CODE_PAGE, ADDRESS)

    # The limiter's refusal: one line, and its request in the access log.
    [limited] = [
        line
        for line in lines
        if "exceeded" in line["message"] or line.get("event") == "rate_limited"
    ]
    assert limited["ip"] == ADDRESS and limited["endpoint"] == "auth.unlock"
    [request] = [r for r in requests if r["request_id"] == limited["request_id"]]
    assert (request["path"], request["status"]) == ("/accounts/unlock/", 429)

    # The access log: JSON with the path alone and an id on every request.
    assert requests and all(
        {"method", "path", "status", "bytes", "duration_ms", "address", "user_agent"} <= set(r)
        for r in requests
    )
    assert all(r["request_id"] and "?" not in r["path"] for r in requests)
    assert any(r["path"] == "/accounts/login/" and r["address"] == ADDRESS for r in requests)
    assert answered["trusted"] == "proxy-trace.0042"
    assert [r["path"] for r in requests if r["request_id"] == "proxy-trace.0042"] == [
        "/accounts/login/"
    ]
    assert NEW_ID.fullmatch(answered["replaced"])


def test_no_secret_ever_reaches_the_logs(gunicorn_run):
    """Every password, backup code (both spellings), app secret and code, cookie, session token,
    CSRF token, mailed-link token, query string and SECRET_KEY the run used: in no line."""
    run, _, _, errors, access = gunicorn_run
    written = errors.read_text() + access.read_text()
    assert len(run.secrets) > 30 and all(len(secret) >= 8 for secret in run.secrets)
    for secret in run.secrets:
        assert secret not in written, secret
    for code in run.numeric:
        assert not re.search(rf"(?<![0-9A-Za-z]){code}(?![0-9A-Za-z])", written), code
