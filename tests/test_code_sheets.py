"""A new sheet's life: it waits (encrypted, bound to its session, 30 minutes) until a code typed
back proves it was saved; until then the old set works. Every bad input changes nothing."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select

from extensions import db
from models import BackupCodeSet, CodeSheet, SecurityEvent
from security.backup_codes import redeem_backup_code
from tests.helpers import (
    PASSWORD,
    Person,
    codes_from,
    count,
    csrf_from,
    current_keys,
    device_counter,
    give_codes,
    sheet_id_from,
    snapshot,
    table_dump,
    written_forms,
    wrong_code,
)

STATUS = "/settings/security/two-factor/backup-codes/"
CONFIRM = STATUS + "confirm/"
SHEET = STATUS + "new/"
SAVED = SHEET + "saved/"
VOID = SHEET + "void-old/"
DOWNLOAD = STATUS + "download/"
# A refused typed-back code changes only the counter and records only its failure.
COUNTED = ("attempt_counters", "security_events")


def works(app, user_id: int, code: str) -> bool:
    with app.app_context():
        used = redeem_backup_code(db.session, current_keys(), user_id, code) is not None
        db.session.commit()
        return used


def current_set(app) -> str | None:
    with app.app_context():
        return db.session.scalar(select(BackupCodeSet.public_id))


def asked_number(html: str) -> int:
    return int(re.search(r"Type code #(\d+) from your new sheet", html).group(1))


def test_reloads_show_the_same_sheet_and_the_old_set_keeps_working(app, logged_in, user):
    old = give_codes(app, user)
    old_set = current_set(app)
    new = logged_in.start_new_codes()
    pages = [logged_in.client.get(SHEET) for _ in range(3)]
    for page in pages:
        assert page.headers["Cache-Control"] == "no-store"
        assert codes_from(page.get_data(as_text=True)) == new
        assert sheet_id_from(page.get_data(as_text=True)) == sheet_id_from(
            pages[0].get_data(as_text=True)
        )
    assert count(app, CodeSheet) == 1 and current_set(app) == old_set
    status = logged_in.client.get(STATUS).get_data(as_text=True)
    assert "New codes waiting" in status and "Finish saving your new codes" in status
    assert not works(app, user, new[0])
    assert works(app, user, old[0])


def test_a_wrong_typed_back_code_is_refused_counted_and_changes_nothing_else(app, logged_in, user):
    old = give_codes(app, user)
    new = logged_in.start_new_codes()
    page = logged_in.client.get(SAVED).get_data(as_text=True)
    number, sheet = asked_number(page), sheet_id_from(page)
    before = snapshot(app, ignore=COUNTED)
    wrong = new[number % 10]  # another code of the same sheet
    html = logged_in.submit(SAVED, {"code": wrong, "sheet": sheet}).get_data(as_text=True)
    assert f"That is not code #{number} of your new sheet ({sheet})." in html
    assert wrong not in html and f"{wrong[:4]} {wrong[4:]}" not in html
    assert snapshot(app, ignore=COUNTED) == before
    # Counted on this browser's own budget, which it shares with its log-in.
    assert device_counter(app).password_failures == 1
    assert count(app, SecurityEvent, SecurityEvent.kind == "new_sheet_code_failed") == 1
    assert works(app, user, old[0]) and not works(app, user, new[0])


@pytest.mark.parametrize(("typed", "message"), [("", "Enter the code"), ("1234", "8 digits")])
def test_a_malformed_typed_back_code_is_not_even_counted(app, logged_in, user, typed, message):
    give_codes(app, user)
    logged_in.start_new_codes()
    page = logged_in.client.get(SAVED).get_data(as_text=True)
    before = snapshot(app)
    html = logged_in.submit(SAVED, {"code": typed, "sheet": sheet_id_from(page)})
    assert message in html.get_data(as_text=True)
    assert snapshot(app) == before


def test_the_right_code_puts_the_new_set_in_use_and_voids_the_old(app, logged_in, user):
    old = give_codes(app, user)
    new = logged_in.start_new_codes()
    response = logged_in.save_codes(new)
    assert response.status_code == 302
    page = logged_in.client.get(response.location).get_data(as_text=True)
    assert "Your new backup codes are in use. Your old codes no longer work." in page
    assert count(app, CodeSheet) == 0
    assert not works(app, user, old[0]) and works(app, user, new[0])
    assert count(app, SecurityEvent, SecurityEvent.kind == "backup_codes_in_use") == 1


def test_a_first_set_works_at_once_and_saving_records_it(app, logged_in, user):
    codes = logged_in.start_new_codes()
    assert works(app, user, codes[0])
    html = logged_in.client.get(SHEET).get_data(as_text=True)
    assert "Lost your old sheet?" not in html
    response = logged_in.save_codes(codes)
    page = logged_in.client.get(response.location).get_data(as_text=True)
    assert "Your backup codes are saved and ready to use." in page
    assert count(app, SecurityEvent, SecurityEvent.kind == "backup_codes_saved") == 1
    assert works(app, user, codes[1])


def test_an_unsaved_first_set_is_not_voided_by_asking_again(frozen_clock, app, logged_in, user):
    """A first set may be printed though never typed back: asking again later makes a sheet that
    waits, and the printed codes keep working."""
    first = logged_in.start_new_codes()
    frozen_clock(minutes=40)
    logged_in.login()
    second = logged_in.start_new_codes()
    assert "your old codes keep working" in logged_in.client.get(SHEET).get_data(as_text=True)
    assert works(app, user, first[0]) and not works(app, user, second[0])


def test_voiding_the_old_set_early_needs_the_password(app, logged_in, user):
    old = give_codes(app, user)
    new = logged_in.start_new_codes()
    html = logged_in.client.get(SHEET).get_data(as_text=True)
    sheet = sheet_id_from(html)
    before = snapshot(app, ignore=COUNTED)
    wrong = logged_in.submit(SHEET, {"password": "not my password", "sheet": sheet}, action=VOID)
    assert "That password is not right. Nothing was changed." in wrong.get_data(as_text=True)
    assert snapshot(app, ignore=COUNTED) == before
    assert works(app, user, old[0])
    done = logged_in.submit(SHEET, {"password": PASSWORD, "sheet": sheet}, action=VOID)
    assert done.status_code == 302 and done.location == SHEET
    page = logged_in.client.get(SHEET).get_data(as_text=True)
    assert "Your old codes no longer work. The codes on this sheet work now." in page
    assert codes_from(page) == new and "Lost your old sheet?" not in page
    assert not works(app, user, old[1]) and works(app, user, new[0])
    assert count(app, SecurityEvent, SecurityEvent.kind == "old_backup_codes_voided") == 1
    logged_in.save_codes(new)
    assert count(app, SecurityEvent, SecurityEvent.kind == "backup_codes_saved") == 1


def test_a_form_acts_only_on_the_sheet_it_was_shown_with(app, logged_in, user):
    """Tab 1 shows sheet X; tab 2 (same session) makes sheet Y. Void and save from tab 1 are
    refused: they would act on codes tab 1 never showed."""
    old = give_codes(app, user)
    logged_in.start_new_codes()
    tab_one = logged_in.client.get(SHEET).get_data(as_text=True)
    x, x_codes = sheet_id_from(tab_one), codes_from(tab_one)
    y_codes = logged_in.start_new_codes()
    before = snapshot(app, ignore=COUNTED)
    void = logged_in.submit(SHEET, {"password": PASSWORD, "sheet": x}, action=VOID)
    assert void.status_code == 302 and void.location == STATUS
    for code in x_codes:
        logged_in.submit(SAVED, {"code": code, "sheet": x})
    assert snapshot(app, ignore=COUNTED) == before
    assert works(app, user, old[0])
    assert not any(works(app, user, code) for code in x_codes + y_codes)


def test_only_the_session_that_asked_sees_or_saves_the_sheet(app, client, user, other_user):
    owner, other_device, bob = (Person(app.test_client()) for _ in range(3))
    give_codes(app, user)
    owner.login()
    bob.login("bob", "bob's own long password")
    new = owner.start_new_codes()
    # New codes end the account's other sessions: this one signs in after they were asked for.
    other_device.login()
    page = owner.client.get(SHEET).get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "sheet": sheet_id_from(page)}
    before = snapshot(app, ignore=("user_sessions",))
    for stranger in (other_device, bob):
        for response in (
            stranger.client.get(SHEET),
            stranger.client.get(SAVED),
            stranger.submit("/settings/", {"sheet": form["sheet"]}, action=DOWNLOAD),
            stranger.submit("/settings/", {"sheet": form["sheet"], "code": new[0]}, action=SAVED),
        ):
            body = response.get_data(as_text=True)
            assert response.status_code in (302, 400), response.status_code
            assert not any(code in body for code in new)
    assert snapshot(app, ignore=("user_sessions",)) == before


def test_the_sheet_ends_with_its_session_and_after_30_minutes(frozen_clock, app, logged_in, user):
    """Checklist 6/11: the codes are shown again only to the session that asked, for at most
    30 minutes; log-out deletes the sheet at once."""
    old = give_codes(app, user)
    new = logged_in.start_new_codes()
    frozen_clock(minutes=29)
    assert codes_from(logged_in.client.get(SHEET).get_data(as_text=True)) == new
    frozen_clock(minutes=31)
    response = logged_in.client.get(SHEET)
    assert response.status_code == 302
    assert "no longer waiting" in logged_in.client.get(response.location).get_data(as_text=True)
    assert works(app, user, old[0]) and not works(app, user, new[0])
    # Log-out deletes it at once (the foreign key cascades). The session is still alive: the
    # page above was seen two minutes before.
    logged_in.start_new_codes()
    assert count(app, CodeSheet) == 1
    logged_in.logout()
    assert count(app, CodeSheet) == 0


def test_a_waiting_sheet_is_encrypted_in_the_database(app, logged_in, user):
    """Checklist 11 with a sheet waiting: no plaintext, spaced, dashed, base64 or hex copy."""
    give_codes(app, user)
    new = logged_in.start_new_codes()
    dump = table_dump(app)
    assert "code_sheets" in dump
    for code in new:
        for form in written_forms(code):
            assert form not in dump


def test_a_failed_event_insert_leaves_a_new_account_without_a_half_set(app, logged_in, user):
    """The first set is in use at once: its set, sheet and event are one transaction."""
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def refuse_insert(mapper, connection, target):
        if target.kind == "codes_generated":
            raise RuntimeError("the event's insert failed")

    before = snapshot(app, ignore=("attempt_counters", "user_sessions"))
    sqlalchemy_event.listen(SecurityEvent, "before_insert", refuse_insert)
    try:
        response = logged_in.submit(CONFIRM, {"password": PASSWORD})
    finally:
        sqlalchemy_event.remove(SecurityEvent, "before_insert", refuse_insert)
    assert response.status_code == 500
    assert snapshot(app, ignore=("attempt_counters", "user_sessions")) == before
    assert current_set(app) is None and count(app, CodeSheet) == 0


def test_checking_counts_for_a_waiting_code_and_for_none(app, logged_in, user):
    old = give_codes(app, user)
    new = logged_in.start_new_codes()
    check = STATUS + "check/"
    waiting = logged_in.submit(check, {"password": PASSWORD, "code": new[0]})
    assert "not yet in use" in waiting.get_data(as_text=True)
    neither = logged_in.submit(check, {"password": PASSWORD, "code": wrong_code(old + new, 3)})
    assert "is not an unused code of your current set" in neither.get_data(as_text=True)
    assert works(app, user, old[0]) and not works(app, user, new[0])
