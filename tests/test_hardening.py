"""Attacks found in review, and checklist items that each deserve their own proof."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from extensions import db
from models import BackupCodeSet, CodeSheet, User, UserSession
from security.backup_codes import redeem_backup_code
from security.passwords import verify_password
from tests.helpers import (
    PASSWORD,
    Person,
    codes_from,
    csrf_from,
    current_keys,
    give_codes,
    make_user,
    sheet_id_from,
    snapshot,
)
from tools.live import Browser, at_once, running

CONFIRM = "/settings/security/two-factor/backup-codes/confirm/"
SHEET = "/settings/security/two-factor/backup-codes/new/"


def test_forms_work_over_https_without_a_referer(app, user, user_codes):
    """Code and recovery pages send no Referer; their own forms must still be accepted."""
    person = Person(app.test_client())
    https = {"base_url": "https://localhost"}
    person.login(**https)
    page = person.client.get(CONFIRM, **https)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    response = person.client.post(
        CONFIRM,
        data={"csrf_token": csrf_from(page.get_data(as_text=True)), "password": PASSWORD},
        follow_redirects=True,
        **https,
    )
    assert len(codes_from(response.get_data(as_text=True))) == 10
    stranger = Person(app.test_client())
    token = csrf_from(
        stranger.client.get("/accounts/password/reset/", **https).get_data(as_text=True)
    )
    response = stranger.client.post(
        "/accounts/password/reset/",
        data={"csrf_token": token, "identifier": "bob", "use_backup_code": "1"},
        **https,
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/accounts/login/", {"identifier": "ali\x00ce", "password": PASSWORD}),
        (
            "/accounts/signup/",
            {"username": "eve", "email": "e\x00@example.com", "password": "a long passphrase"},
        ),
        ("/accounts/password/reset/", {"identifier": "\x00", "use_backup_code": "1"}),
    ],
)
def test_nul_characters_are_a_clear_400(app, user, url, data):
    """PostgreSQL cannot store NUL: refuse it before it reaches the database, never a 500."""
    person = Person(app.test_client())
    before = snapshot(app)
    response = person.submit(url, data)
    assert response.status_code == 400
    assert "could not be read" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_nul_in_a_path_or_user_agent(app, person, user):
    person.login(headers={"User-Agent": "Evil\x00Browser"})
    assert person.client.get("/ali%00ce/").status_code == 400
    with app.app_context():
        assert db.session.scalar(select(UserSession.user_agent)) == "EvilBrowser"


def test_a_mangled_download_form_still_gives_the_servers_sheet(app, person, user):
    """Fields the download form does not have are ignored: the file is the server's sheet."""
    person.login()
    html = person.submit(CONFIRM, {"password": PASSWORD}, follow_redirects=True).get_data(
        as_text=True
    )
    codes = [f"{code[:4]} {code[4:]}" for code in codes_from(html)]
    for codes_field in ("12345678", "²" * 8, "1234567a " * 10, ""):
        response = person.client.post(
            "/settings/security/two-factor/backup-codes/download/",
            data={
                "csrf_token": csrf_from(html),
                "sheet": sheet_id_from(html),
                "codes": codes_field,
                "codes-²": "1",
            },
        )
        assert response.status_code == 200
        assert re.findall(r"\d{4} \d{4}", response.get_data(as_text=True)) == codes


def test_all_digit_usernames_are_refused(app, person):
    """A username shaped like a phone number could be captured by someone else's phone."""
    before = snapshot(app)
    body = person.signup("5550100199", PASSWORD).get_data(as_text=True)
    assert "Use at least one letter" in body
    assert snapshot(app) == before


@pytest.mark.parametrize("number", ["+15550100199", "+15550100777"])
def test_spellings_of_a_phone_number_share_one_counter_known_or_not(app, user, number):
    """Throttling must not tell a registered phone number from an unregistered one."""
    spellings = [
        number,
        f"{number[:2]} {number[2:5]} {number[5:8]} {number[8:]}",
        f"{number[:2]}-{number[2:]}",
        f"{number[:2]}({number[2:5]}){number[5:]}",
        f"{number[:2]}.{number[2:5]}.{number[5:]}",
        f" {number} ",
    ]
    results = []
    for spelling in spellings:
        attacker = Person(app.test_client())
        attacker.start_recovery(spelling)
        body = attacker.enter_code("00000000").get_data(as_text=True)
        results.append("Too many failed attempts" in body)
    assert results == [False] * 5 + [True]


def post_rules(app):
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and not rule.arguments:
            yield rule.rule


def test_every_post_route_refuses_a_missing_or_foreign_csrf_token(app, user, other_user):
    """Checklist 66: iterate the URL map; 400 and no change, signed in or not."""
    routes = list(post_rules(app))
    assert len(routes) >= 9
    person = Person(app.test_client())
    person.login()
    bob = Person(app.test_client())
    bob.login("bob", "bob's own long password")
    foreign = csrf_from(bob.client.get("/settings/").get_data(as_text=True))
    before = snapshot(app)
    for url in routes:
        for token in ({}, {"csrf_token": foreign}):
            response = person.client.post(url, data={"password": PASSWORD, **token})
            assert response.status_code == 400, url
    assert snapshot(app) == before


def get_rules(app):
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments and rule.endpoint != "static":
            yield rule.rule


def test_get_never_changes_anything(app, user, user_codes):
    """Checklist 67 (sessions' last-seen time aside, written at most once a minute)."""
    person = Person(app.test_client())
    person.login()
    before = snapshot(app)
    # The test's tables are made without migrations (/readyz: 503, schema); no METRICS_TOKEN.
    answers = {"/readyz": 503, "/metrics": 404}
    for url in [*get_rules(app), "/alice/"]:
        assert person.client.get(url).status_code in (200, 302, answers.get(url)), url
    assert snapshot(app) == before


def test_new_password_page_is_single_use(app, person, user, user_codes):
    """Checklist 35: after the new password is saved the grant is gone."""
    person.start_recovery("alice")
    person.enter_code(user_codes[0])
    new = "the new passphrase"
    person.submit("/accounts/password/new/", {"password": new, "confirm": new})
    response = person.client.get("/accounts/password/new/")
    assert response.status_code == 302 and response.location == "/settings/security/password/"
    response = person.client.post(
        "/accounts/password/new/",
        data={
            "csrf_token": csrf_from(person.client.get("/settings/").get_data(as_text=True)),
            "password": "yet another passphrase",
            "confirm": "yet another passphrase",
        },
    )
    assert response.status_code == 302
    person.logout()
    assert person.login("alice", new).status_code == 302


def test_password_fields_allow_managers_and_paste(client):
    """Checklist 50: autocomplete hints, no paste blocking; checklist 39: no hints or questions."""
    login = client.get("/accounts/login/").get_data(as_text=True)
    signup = client.get("/accounts/signup/").get_data(as_text=True)
    assert 'autocomplete="current-password"' in login and 'type="password"' in login
    assert 'autocomplete="new-password"' in signup
    for html in (login, signup):
        assert "onpaste" not in html and "password hint" not in html.lower()
        assert "security question" not in html.lower()


def test_password_hashes_are_salted_and_production_cost_is_12(app_factory, monkeypatch):
    """Checklist 52: the production settings hash passwords with bcrypt cost 12 and a salt of
    their own (backup codes with cost 10 or more)."""
    for name in ("PASSWORD_BCRYPT_COST", "BACKUP_CODE_BCRYPT_COST"):
        monkeypatch.delenv(name, raising=False)
    production = app_factory(
        "production.db",
        SPAREKEY_ENV="production",
        SECRET_KEY="x" * 48,
        SITE_URL="https://sparekey.example",
    )
    alice = make_user(production, "alice", PASSWORD)
    make_user(production, "bob", PASSWORD)
    with production.app_context():
        first, second = db.session.scalars(select(User.password_hash).order_by(User.id)).all()
        keys = current_keys()
        assert verify_password(keys, PASSWORD, first) and verify_password(keys, PASSWORD, second)
    assert first.startswith("$2b$12$") and second.startswith("$2b$12$")
    # The same password, two salts: the 22 characters after "$2b$12$" differ, and so do the hashes.
    assert first[7:29] != second[7:29] and first != second
    give_codes(production, alice)
    with production.app_context():
        code_salt = db.session.scalar(select(BackupCodeSet.salt))
    assert int(code_salt.split("$")[2]) >= 10


def test_session_rows_hold_only_a_hash_of_the_cookie_token(app, person, user):
    """Checklist 55: 256-bit tokens; a database dump cannot be replayed as a cookie."""
    person.login()
    with app.app_context():
        row_id = db.session.scalar(select(UserSession.id))
    thief = app.test_client()
    with thief.session_transaction() as session:
        session["_user_id"] = row_id
        session["_fresh"] = True
    assert thief.get("/settings/").status_code == 302
    assert len(row_id) == 64


def test_one_cannot_log_out_another_accounts_session(app, user, other_user):
    """Checklist 65."""
    bob = Person(app.test_client())
    bob.login("bob", "bob's own long password")
    with app.app_context():
        bobs = db.session.scalar(select(UserSession.public_id))
    alice = Person(app.test_client())
    alice.login()
    token = csrf_from(alice.client.get("/settings/").get_data(as_text=True))
    response = alice.client.post(
        "/settings/security/sessions/",
        data={"one-csrf_token": token, "one-session": bobs, "one-submit": "1"},
    )
    assert response.status_code == 302
    assert "already ended" in alice.client.get(response.location).get_data(as_text=True)
    assert bob.client.get("/settings/").status_code == 200


def test_two_simultaneous_regenerations_leave_one_displayed_set(app_factory):
    """Checklist 9: four sheets asked for at once by a new account; it ends with one set in use
    (the first to commit, a first set) and one sheet, shown by exactly one browser. New codes
    end every other session, so the other three are logged out and make nothing (each waits
    for the account's lock, then finds its session gone). Once saved the sheet is the whole
    set."""
    app = app_factory("r.db")
    user_id = make_user(app, "alice", PASSWORD)
    with running(app) as base:
        browsers = [Browser(base) for _ in range(4)]
        for browser in browsers:
            assert browser.log_in("alice", PASSWORD) == 302
        tokens = [browser.token(CONFIRM) for browser in browsers]

        def regenerate(index: int) -> int:
            status, _, _ = browsers[index].post(
                CONFIRM, {"csrf_token": tokens[index], "password": PASSWORD}
            )
            return status

        statuses = at_once(4, regenerate, timeout=60)
        assert sorted(statuses) == [302, 302, 302, 303], statuses
        sheets = [browser.get(SHEET) for browser in browsers]
        shown = [
            (browser, codes_from(body))
            for browser, (status, _, body) in zip(browsers, sheets, strict=True)
            if status == 200
        ]
        assert len(shown) == 1 and len(shown[0][1]) == 10, [status for status, _, _ in sheets]
        assert sorted(status for status, _, _ in sheets) == [200, 302, 302, 302]
        with app.app_context():
            assert len(db.session.scalars(select(UserSession)).all()) == 1
        with app.app_context():
            assert len(db.session.scalars(select(BackupCodeSet)).all()) == 1
            assert len(db.session.scalars(select(CodeSheet)).all()) == 1
        browser, codes = shown[0]
        saved_page = browser.get(SHEET + "saved/")[2]
        number = int(re.search(r"Type code #(\d+) from", saved_page).group(1))
        data = {"code": codes[number - 1], "sheet": sheet_id_from(saved_page)}
        assert (
            browser.post(SHEET + "saved/", {"csrf_token": csrf_from(saved_page), **data})[0] == 302
        )
    with app.app_context():
        assert len(db.session.scalars(select(BackupCodeSet)).all()) == 1
        for code in codes:
            assert redeem_backup_code(db.session, current_keys(), user_id, code) is not None
        db.session.commit()
        assert db.session.get(User, user_id) is not None
