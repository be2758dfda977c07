"""Faults while a new sheet is made or saved, against a running server: the session ended by
another device mid-render, and the database connection cut (a TCP relay between the app and
PostgreSQL that the test closes). After each, the old sheet or the saved new one works, never
neither and never a set nobody saw, and the page says only what is true."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from flask import before_render_template
from sqlalchemy import event, select

from config import normalise_database_url
from extensions import db
from models import BackupCodeSet, CodeSheet, SecurityEvent
from security import settings
from security.backup_codes import redeem_backup_code
from tests.helpers import (
    PASSWORD,
    codes_from,
    count,
    current_keys,
    give_codes,
    make_user,
)
from tools.live import Browser, running

CONFIRM = "/settings/security/two-factor/backup-codes/confirm/"
SHEET = "/settings/security/two-factor/backup-codes/new/"
SAVED = SHEET + "saved/"
SESSIONS = "/settings/security/sessions/"
SECURE = "/settings/security/secure/"
ALL_OR_NOTHING = "happened completely or not at all"


def works(app, user_id: int, code: str) -> bool:
    """Spend `code` directly: True if it was an unused code of the account's set."""
    with app.app_context():
        used = redeem_backup_code(db.session, current_keys(), user_id, code) is not None
        db.session.commit()
        return used


def set_id(app) -> str | None:
    with app.app_context():
        return db.session.scalar(select(BackupCodeSet.public_id))


def ask_for_codes(browser: Browser) -> tuple[int, str]:
    status, location, body = browser.post(
        CONFIRM, {"csrf_token": browser.token(CONFIRM), "password": PASSWORD}
    )
    return status, location or body


def save(browser: Browser, codes: list[str]) -> tuple[int, str, str]:
    page = browser.get(SAVED)[2]
    number = int(re.search(r"Type code #(\d+) from your new sheet", page).group(1))
    return browser.post(SAVED, {"csrf_token": browser.token(SAVED), "code": codes[number - 1]})


def test_session_ended_by_another_device_while_the_sheet_renders(app_factory):
    """The phone presses "Log out of all other sessions" while the laptop's sheet is rendered:
    the sheet dies with the laptop's session, the old codes keep working, the laptop is asked
    to log in, and no new set is in use."""
    app = app_factory("render.db")
    user_id, old, old_set = alice_with_saved_codes(app)
    with running(app) as base:
        laptop, phone = Browser(base), Browser(base)
        assert laptop.log_in("alice", PASSWORD) == 302
        # New codes end every other session: the phone signs in after the laptop asked.
        assert ask_for_codes(laptop) == (303, SHEET)
        assert phone.log_in("alice", PASSWORD) == 302
        ended = []

        def end_the_laptops_session(sender, template, context, **extra):
            if template.name == "settings/codes.html" and not ended:
                token = phone.token(SESSIONS)
                ended.append(
                    phone.post(
                        SESSIONS,
                        {
                            "others-csrf_token": token,
                            "others-password": PASSWORD,
                            "others-submit": "1",
                        },
                    )[0]
                )

        before_render_template.connect(end_the_laptops_session, app)
        try:
            status, _, page = laptop.get(SHEET)
        finally:
            before_render_template.disconnect(end_the_laptops_session, app)
        assert ended == [302]
        # The page was already read when the session ended; what it shows is a dead sheet.
        assert status == 200 and len(codes_from(page)) == 10
        with app.app_context():
            assert count(app, CodeSheet) == 0
        status, location, _ = laptop.get(SAVED)
        assert status == 302 and location.startswith("/accounts/login/")
    assert set_id(app) == old_set
    assert not any(works(app, user_id, code) for code in codes_from(page))
    assert works(app, user_id, old[0])


@pytest.fixture
def app_through_relay(app_factory, relayed_database_url):
    """An app whose every database connection goes through a relay the test can cut."""
    relay, url = relayed_database_url
    yield (
        app_factory(
            SQLALCHEMY_DATABASE_URI=normalise_database_url(url),
            SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "hide_parameters": True},
            PROPAGATE_EXCEPTIONS=False,
        ),
        relay,
    )


@contextmanager
def cut_at(app, relay, statement_start: str) -> Iterator[list[bool]]:
    """Cut the relay just before the app's next statement that starts with `statement_start`
    (or, for "COMMIT", just before its next commit): once; afterwards connections are allowed
    again. Yields a list that holds True once the cut happened."""
    with app.app_context():
        engine = db.engine
    done: list[bool] = []

    def cut(*_args) -> None:
        if not done:
            done.append(True)
            relay.cut()

    def before_statement(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(statement_start):
            cut()

    name, listener = (
        ("commit", cut)
        if statement_start == "COMMIT"
        else ("before_cursor_execute", before_statement)
    )
    event.listen(engine, name, listener)
    try:
        yield done
    finally:
        event.remove(engine, name, listener)
        relay.resume()


def alice_with_saved_codes(app) -> tuple[int, list[str], str | None]:
    """An account with a saved set: its id, its codes and the set's id."""
    user_id = make_user(app)
    return user_id, give_codes(app, user_id), set_id(app)


def test_connection_cut_between_the_password_check_and_the_redirect(app_through_relay):
    """The sheet's INSERT never reaches the database: a 500 that claims only all-or-nothing,
    no sheet, no event, the old set as it was; asking again works."""
    app, relay = app_through_relay
    user_id, old, old_set = alice_with_saved_codes(app)
    with running(app) as base:
        browser = Browser(base)
        assert browser.log_in("alice", PASSWORD) == 302
        token = browser.token(CONFIRM)
        with cut_at(app, relay, "INSERT INTO CODE_SHEETS") as done:
            status, _, body = browser.post(CONFIRM, {"csrf_token": token, "password": PASSWORD})
        assert done == [True] and relay.cuts == 1
        assert status == 500 and ALL_OR_NOTHING in body and "Nothing was changed" not in body
        with app.app_context():
            assert count(app, CodeSheet) == 0
            assert count(app, SecurityEvent, SecurityEvent.kind == "codes_generated") == 0
        assert set_id(app) == old_set
        status, location, _ = browser.get(SHEET)
        assert status == 302 and location.endswith("/settings/security/two-factor/backup-codes/")
        # The database is back: the same request now makes a sheet.
        assert ask_for_codes(browser) == (303, SHEET)
        assert len(codes_from(browser.get(SHEET)[2])) == 10
    assert works(app, user_id, old[0])


@pytest.mark.parametrize("where", ["DELETE FROM BACKUP_CODES", "COMMIT"])
def test_connection_cut_while_saving_the_new_sheet(app_through_relay, where):
    """Cut while "Use these codes" puts the new set in use (at the old set's DELETE, or at the
    commit itself): the old set still works, the sheet still waits with the same codes, and
    saving again puts the new set in use; never neither, never both."""
    app, relay = app_through_relay
    user_id, old, old_set = alice_with_saved_codes(app)
    with running(app) as base:
        browser = Browser(base)
        assert browser.log_in("alice", PASSWORD) == 302
        assert ask_for_codes(browser) == (303, SHEET)
        new = codes_from(browser.get(SHEET)[2])
        with cut_at(app, relay, where) as done:
            status, _, body = save(browser, new)
        assert done == [True]
        assert status == 500 and ALL_OR_NOTHING in body
        assert set_id(app) == old_set
        again = browser.get(SHEET)[2]
        assert codes_from(again) == new
        assert works(app, user_id, old[0])
        assert not works(app, user_id, new[0])
        status, location, _ = save(browser, new)
        assert status == 302 and location.endswith("/settings/security/two-factor/backup-codes/")
    assert set_id(app) != old_set
    assert not works(app, user_id, old[1])
    assert works(app, user_id, new[1])


def test_securing_the_account_waits_for_a_save_under_way_and_voids_it(app_factory):
    """An intruder's session is saving a sheet when the owner presses "Secure my account": the
    secure waits for the save (both take the account's lock) and then voids its set too. On
    PostgreSQL the two really overlap; on SQLite the database lock orders them the same way."""
    app = app_factory("secure-race.db")
    user_id, _, _ = alice_with_saved_codes(app)
    with running(app) as base:
        intruder, owner = Browser(base), Browser(base)
        assert intruder.log_in("alice", PASSWORD) == 302
        # New codes end every other session: the owner signs in after the intruder asked.
        assert ask_for_codes(intruder) == (303, SHEET)
        assert owner.log_in("alice", PASSWORD) == 302
        intruders = codes_from(intruder.get(SHEET)[2])
        saving, secured = threading.Event(), []
        original = settings.typed_back

        def slow_typed_back(keys, sheet, code):
            # The save holds the account's lock here; the owner's secure starts meanwhile.
            saving.set()
            time.sleep(0.5)
            return original(keys, sheet, code)

        def secure() -> None:
            saving.wait(10)
            token = owner.token(SECURE)
            form = {"pw-csrf_token": token, "pw-password": PASSWORD, "pw-submit": "1"}
            secured.append(owner.post(SECURE, form)[0])

        with mock.patch.object(settings, "typed_back", slow_typed_back):
            owner_thread = threading.Thread(target=secure)
            owner_thread.start()
            saved = save(intruder, intruders)[0]
            owner_thread.join(30)
        assert saved == 302 and secured == [302]
    assert set_id(app) is None and count(app, CodeSheet) == 0
    assert not any(works(app, user_id, code) for code in intruders)
