"""Backup Codes → "Check a saved code": is a code from the sheet valid and unused? Never spent."""

from __future__ import annotations

from unittest import mock

import bcrypt
import pytest
from sqlalchemy import select

from extensions import db
from models import AttemptCounter, BackupCode, BackupCodeSet, CodeSheet, SecurityEvent
from security.backup_codes import redeem_backup_code
from tests.helpers import (
    PASSWORD,
    Person,
    csrf_from,
    current_keys,
    device_counter,
    give_codes,
    sheet_id_from,
    snapshot,
    wrong_code,
)

STATUS = "/settings/security/two-factor/backup-codes/"
CHECK = "/settings/security/two-factor/backup-codes/check/"
CONFIRM = "/settings/security/two-factor/backup-codes/confirm/"
DOWNLOAD = "/settings/security/two-factor/backup-codes/download/"
SHEET = "/settings/security/two-factor/backup-codes/new/"
NOT_VALID = "is not an unused code of your current set"
THROTTLED = "Too many failed attempts"
CHECK_LINE = "Check this sheet at Settings → Security → Two-Factor Authentication → Backup Codes"


def check(person: Person, code: str, password: str = PASSWORD):
    return person.submit(CHECK, {"password": password, "code": code})


def set_id(app) -> str:
    with app.app_context():
        return db.session.scalar(select(BackupCodeSet.public_id))


def unused_numbers(app, user_id: int) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(BackupCode.number)
                .where(BackupCode.user_id == user_id, BackupCode.used_at.is_(None))
                .order_by(BackupCode.number)
            )
        )


def recovers_with(app, code: str) -> bool:
    """A locked-out person in another browser gets in with `code`."""
    other = Person(app.test_client())
    other.start_recovery("alice")
    return other.enter_code(code).location == "/accounts/password/new/"


def test_the_link_appears_only_when_there_are_codes(app, logged_in, user):
    assert "Check a saved code" not in logged_in.client.get(STATUS).get_data(as_text=True)
    response = logged_in.client.get(CHECK)
    assert response.status_code == 302 and response.location == STATUS
    give_codes(app, user)
    status = logged_in.client.get(STATUS).get_data(as_text=True)
    assert f'href="{CHECK}"' in status and ">Check a saved code<" in status
    page = logged_in.client.get(CHECK)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert ">Password</label>" in html and ">Backup code</label>" in html
    assert ">Check</button>" in html and set_id(app) in html
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_a_valid_code_is_named_by_number_and_still_works(app, logged_in, user, user_codes):
    """Checking says valid, its number and set; the code is not spent and recovers afterwards."""
    code = user_codes[3]
    response = check(logged_in, f"{code[:4]}-{code[4:]}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert (
        f'Code #4 of your current set <span class="mono">{set_id(app)}</span> is valid and '
        "unused." in html
    )
    assert "It still works." in html
    assert response.headers["Cache-Control"] == "no-store"
    for shown in user_codes:
        assert shown not in html and f"{shown[:4]} {shown[4:]}" not in html
    assert unused_numbers(app, user) == list(range(1, 11))
    with app.app_context():
        event = db.session.scalar(
            select(SecurityEvent).where(SecurityEvent.kind == "backup_code_checked")
        )
    assert event.detail == f"code #4 of set {set_id(app)}"
    events_page = logged_in.client.get("/settings/security/events/").get_data(as_text=True)
    assert f"Saved backup code checked (code #4 of set {set_id(app)})" in events_page
    assert recovers_with(app, code)


def test_a_used_code_is_not_valid(app, logged_in, user, user_codes):
    with app.app_context():
        redeem_backup_code(db.session, current_keys(), user, user_codes[0])
        db.session.commit()
    html = check(logged_in, user_codes[0]).get_data(as_text=True)
    assert f"{NOT_VALID} ({set_id(app)}): it may be used already, mistyped, or from" in html
    assert "valid and unused" not in html


def test_another_accounts_code_is_not_valid_and_stays_unused(
    app, logged_in, user, user_codes, other_user
):
    bobs = give_codes(app, other_user)
    html = check(logged_in, bobs[0]).get_data(as_text=True)
    assert NOT_VALID in html and "valid and unused" not in html
    assert unused_numbers(app, other_user) == list(range(1, 11))


def test_a_code_from_a_replaced_set_is_not_valid(app, logged_in, user, user_codes):
    newer = give_codes(app, user)
    stale = next(code for code in user_codes if code not in newer)
    html = check(logged_in, stale).get_data(as_text=True)
    assert f"{NOT_VALID} ({set_id(app)})" in html
    with app.app_context():
        kinds = db.session.scalars(select(SecurityEvent.kind)).all()
    assert kinds.count("backup_code_check_failed") == 1


@pytest.mark.parametrize("password", ["not my password", ""])
def test_wrong_password_checks_nothing(app, logged_in, user, user_codes, password):
    """A form error; the code is never hashed (one checkpw for the password, no hashpw)."""
    before = snapshot(app, ignore=("attempt_counters", "security_events"))
    with (
        mock.patch.object(bcrypt, "hashpw", wraps=bcrypt.hashpw) as hashpw,
        mock.patch.object(bcrypt, "checkpw", wraps=bcrypt.checkpw) as checkpw,
    ):
        response = check(logged_in, user_codes[0], password=password)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    if password:
        assert "That password is not right. No code was checked." in html
        assert checkpw.call_count == 1
    else:
        assert "Enter your password." in html
        assert checkpw.call_count == 0
    assert hashpw.call_count == 0
    assert "valid and unused" not in html and NOT_VALID not in html
    assert user_codes[0] not in html
    assert snapshot(app, ignore=("attempt_counters", "security_events")) == before


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "Enter a backup code."),
        ("abcd efgh", "A backup code is 8 digits"),
        ("１２３４５６７８", "A backup code is 8 digits"),
        ("1234567", "A backup code is 8 digits"),
        ("1" * 5000, "That is too long"),
    ],
)
def test_wrong_shapes_get_a_message_and_are_not_counted(
    app, logged_in, user, user_codes, code, message
):
    before = snapshot(app)
    with mock.patch.object(bcrypt, "checkpw", wraps=bcrypt.checkpw) as checkpw:
        response = check(logged_in, code)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert message in html and "abcd" not in html
    assert checkpw.call_count == 0
    assert snapshot(app) == before


def test_checks_share_the_devices_budget_with_its_log_in(
    app, person, user, user_codes, frozen_clock
):
    """Checklist 23: a signed-in session gets no separate budget. Wrong checks count on this
    browser's own password budget, the one its log-in uses: after 5 the next check, of a valid
    code, waits without any hashing, and so does this browser's log-in. Strangers' counters
    and "Forgot password?" elsewhere are untouched. Nothing is spent."""
    person.login()
    for index in range(5):
        assert NOT_VALID in check(person, wrong_code(user_codes, index)).get_data(as_text=True)
    with (
        mock.patch.object(bcrypt, "hashpw", wraps=bcrypt.hashpw) as hashpw,
        mock.patch.object(bcrypt, "checkpw", wraps=bcrypt.checkpw) as checkpw,
    ):
        html = check(person, user_codes[0]).get_data(as_text=True)
    assert THROTTLED in html and "valid and unused" not in html
    assert hashpw.call_count == 0 and checkpw.call_count == 0
    assert device_counter(app).password_failures == 5
    with app.app_context():
        # Its first log-in, before the browser was trusted, counted here and was cleared.
        assert db.session.get(AttemptCounter, f"user:{user}").failures == 0
    person.logout()
    assert THROTTLED in person.login().get_data(as_text=True)
    elsewhere = Person(app.test_client())
    elsewhere.start_recovery("alice")
    assert elsewhere.enter_code(user_codes[0]).location == "/accounts/password/new/"
    assert unused_numbers(app, user) == list(range(2, 11))


def test_a_valid_check_clears_the_counter(app, logged_in, user, user_codes):
    for index in range(3):
        check(logged_in, wrong_code(user_codes, index))
    assert device_counter(app).failures == 3
    assert "valid and unused" in check(logged_in, user_codes[1]).get_data(as_text=True)
    counter = device_counter(app)
    assert counter.failures == 0 and counter.password_failures == 0


def test_the_sheet_and_the_download_say_where_to_check_them(app, logged_in):
    logged_in.submit(CONFIRM, {"password": PASSWORD})
    html = logged_in.client.get(SHEET).get_data(as_text=True)
    how_to = html[html.index('<section class="how-to">') :]
    assert CHECK_LINE in how_to[: how_to.index("</section>")]
    form = {"csrf_token": csrf_from(html), "sheet": sheet_id_from(html)}
    text = logged_in.client.post(DOWNLOAD, data=form).get_data(as_text=True)
    assert f"Set: {set_id(app)}" in text
    assert f"\r\n\r\n{CHECK_LINE}.\r\n" in text


def test_a_code_of_the_new_sheet_is_named_as_not_yet_in_use(app, logged_in, user, user_codes):
    """While a new sheet waits: its codes are "your new set, not yet in use", the old set's are
    "your current set", and neither is spent."""
    new = logged_in.start_new_codes()
    html = check(logged_in, new[6]).get_data(as_text=True)
    with app.app_context():
        waiting_id = db.session.scalar(select(CodeSheet.public_id))
    assert (
        f'Code #7 belongs to your new set <span class="mono">{waiting_id}</span>, not yet in use.'
        in html
    )
    old = check(logged_in, user_codes[2]).get_data(as_text=True)
    assert f'Code #3 of your current set <span class="mono">{set_id(app)}</span>' in old
    assert NOT_VALID in check(logged_in, wrong_code(user_codes + new, 1)).get_data(as_text=True)
    assert unused_numbers(app, user) == list(range(1, 11))
