"""Checklist items that had no test of their own yet, each attacked the way the checklist says."""

from __future__ import annotations

import ast
import hmac
import re
from datetime import UTC
from pathlib import Path
from unittest import mock

import bcrypt
import pyotp
import pytest
from sqlalchemy import select

from app import create_app
from extensions import db
from models import UserSession
from security.backup_codes import redeem_backup_code
from tests.helpers import (
    PASSWORD,
    T0,
    Person,
    csrf_from,
    current_keys,
    give_codes,
    snapshot,
    turn_on_app,
)

ROOT = Path(__file__).resolve().parents[1]
CONFIRM = "/settings/security/two-factor/backup-codes/confirm/"
TWO_FACTOR = "/accounts/two-factor/"


def test_the_code_sheet_is_never_cached(person, user):
    """Checklist 7: the response that shows codes says no-store (Back after log-out: e2e)."""
    person.login()
    response = person.submit(CONFIRM, {"password": PASSWORD})
    assert response.headers["Cache-Control"] == "no-store"


def test_codes_are_never_compared_as_plain_text():
    """Checklist 19: no `==` or `in` on codes; digests match in SQL, app codes by compare_digest."""
    for path in (ROOT / "security").glob("*.py"):
        tree = ast.parse(path.read_text())
        checks = [
            node
            for node in ast.walk(tree)
            # Making a set, codes are compared with each other to keep them distinct.
            if isinstance(node, ast.FunctionDef) and node.name != "generate_codes"
        ]
        for node in (inner for function in checks for inner in ast.walk(function)):
            if isinstance(node, ast.Compare):
                names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
                assert "code" not in names, f"{path.name}:{node.lineno} compares a code"


def test_app_codes_are_compared_only_by_compare_digest(app, user, user_with_app):
    """Checklist 19: a typed app code meets the expected one only in hmac.compare_digest, and its
    answer alone decides: told "no", the right code is refused; told "yes", a wrong one passes."""
    right = pyotp.TOTP(user_with_app).at(T0.replace(tzinfo=UTC))
    wrong = "000000" if right != "000000" else "111111"
    real = hmac.compare_digest
    compared: list[tuple[str, str]] = []

    def enter_code(code: str, verdict: bool):
        def compare_digest(a, b):
            if code not in (a, b):
                return real(a, b)
            compared.append((a, b))
            return verdict

        person = Person(app.test_client())
        person.login()
        with mock.patch.object(hmac, "compare_digest", compare_digest):
            return person.submit(TWO_FACTOR, {"code": code})

    response = enter_code(right, verdict=False)
    assert "That code did not work" in response.get_data(as_text=True)
    assert compared and all(typed == right and len(expected) == 6 for expected, typed in compared)
    compared.clear()
    response = enter_code(wrong, verdict=True)
    assert response.status_code == 302 and response.location == "/"
    assert compared


@pytest.mark.parametrize("used", [0, 7, 10])
def test_the_same_hashing_work_whatever_codes_are_left(app, user, used):
    """Checklist 20: one derivation with 10, 3 or no unused codes left."""
    codes = give_codes(app, user)
    with app.app_context():
        for code in codes[:used]:
            redeem_backup_code(db.session, current_keys(), user, code)
            db.session.commit()
    person = Person(app.test_client())
    person.start_recovery("alice")
    with mock.patch.object(bcrypt, "hashpw", wraps=bcrypt.hashpw) as hashpw:
        body = person.enter_code("00000000" if "00000000" not in codes else "11111111")
    assert hashpw.call_count == 1
    assert "That code did not work." in body.get_data(as_text=True)


def test_the_code_step_cannot_be_forced_and_protected_pages_redirect(app, user, user_codes):
    """Checklist 21/64: no pending log-in, no code step; a half-logged-in client sees nothing."""
    turn_on_app(app, user)
    person = Person(app.test_client())
    token = csrf_from(person.client.get("/accounts/login/").get_data(as_text=True))
    for url in ("/accounts/two-factor/", "/accounts/two-factor/backup-code/"):
        response = person.client.post(url, data={"csrf_token": token, "code": user_codes[0]})
        assert response.location == "/accounts/login/"
    get_routes = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and rule.rule.startswith("/settings/")
    ]
    for url in get_routes:
        half = Person(app.test_client())
        half.login()
        response = half.client.get(url)
        assert response.status_code == 302, url
        assert response.location.startswith("/accounts/login/"), url
    with app.app_context():
        assert db.session.scalar(select(UserSession)) is None


def test_a_long_lowercase_passphrase_needs_no_symbols(person):
    """Checklist 47: no composition rules."""
    assert person.signup("walker", "correct pony staple battery").status_code == 302


def test_passwords_never_expire(app, frozen_clock, user):
    """Checklist 53: five years after it was set, the password still signs in, straight to the
    signed-in pages, with no request to change it."""
    assert Person(app.test_client()).login().location == "/"
    frozen_clock(days=5 * 366)
    person = Person(app.test_client())
    response = person.login()
    assert response.status_code == 302 and response.location == "/"
    for page in ("/", "/settings/", "/settings/security/"):
        response = person.client.get(page)
        assert response.status_code == 200, (page, response.location)
        assert "new password" not in response.get_data(as_text=True).lower(), page


def test_sensitive_actions_ask_for_the_password_in_the_same_request(app, person, user):
    """Checklist 60: getting codes and changing the password are refused without it (turning
    the app off: test_two_factor.py::test_turning_off_needs_the_password_and_the_app)."""
    person.login()
    before = snapshot(app, ignore=("attempt_counters", "security_events"))
    body = person.submit(CONFIRM, {"password": ""}).get_data(as_text=True)
    assert "Enter your password." in body
    body = person.submit(
        "/settings/security/password/",
        {"current_password": "", "password": "another passphrase", "confirm": "another passphrase"},
    ).get_data(as_text=True)
    assert "Enter your password." in body
    assert snapshot(app, ignore=("attempt_counters", "security_events")) == before


def test_no_remember_me_cookie_is_ever_set(app, user, user_codes):
    """Checklist 62: remember-me is not offered at all, so there is nothing to revoke."""
    person = Person(app.test_client())
    responses = [person.login(), person.client.get("/")]
    person.logout()
    person.start_recovery("alice")
    responses.append(person.enter_code(user_codes[0]))
    for response in responses:
        for header in response.headers.getlist("Set-Cookie"):
            assert not header.startswith("remember_token")


def test_no_secret_ever_appears_in_a_url(app, user):
    """Checklist 14/63: every form posts; no link or action carries a token, code or password."""
    person = Person(app.test_client())
    person.login()
    codes = person.get_codes()
    pages = ["/", "/alice/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]
    pages += [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and not rule.arguments and rule.rule.startswith("/settings/")
    ]
    cookie = person.client.get_cookie("session").value
    for page in pages:
        html = person.client.get(page).get_data(as_text=True)
        for form in re.findall(r"<form[^>]*>", html):
            assert 'method="post"' in form, (page, form)
        urls = re.findall(r'(?:href|action)="([^"]*)"', html)
        for url in urls:
            assert "?" not in url or url.startswith("/accounts/login/?next="), (page, url)
            assert not any(code in url for code in codes)
            assert cookie not in url and PASSWORD not in url


def test_over_long_fields_are_refused_not_crashed(app, person, user):
    """Checklist 77: long names and passwords get a form error; huge bodies a 413."""
    before = snapshot(app, ignore=("attempt_counters", "security_events"))
    for data in (
        {"identifier": "a" * 300, "password": PASSWORD},
        {"identifier": "alice", "password": "p" * 1001},
    ):
        response = person.submit("/accounts/login/", data)
        assert response.status_code == 200
        assert "too long" in response.get_data(as_text=True)
    response = person.submit("/accounts/login/", {"identifier": "alice", "password": "p" * 70_000})
    assert response.status_code == 413
    assert snapshot(app, ignore=("attempt_counters", "security_events")) == before


def test_trusted_proxies_honour_only_the_last_hop(tmp_path):
    """Checklist 25: with TRUSTED_PROXIES=1 the proxy's X-Forwarded-For names the client; a
    forged value the client put in front of it does not."""
    app = create_app(
        {
            "SPAREKEY_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'proxy.db'}",
            "TRUSTED_PROXIES": 1,
        }
    )

    @app.route("/whoami")
    def whoami():
        from blueprints.context import request_client

        return request_client().ip

    client = app.test_client()
    seen = client.get(
        "/whoami",
        headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    ).get_data(as_text=True)
    assert seen == "203.0.113.9"
