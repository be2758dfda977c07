"""The path to the sheet: Settings → Security → Two-Factor Authentication → Backup Codes."""

from __future__ import annotations

import re
from html import unescape as html_unescape
from unittest import mock

import bcrypt
import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import select

from extensions import db
from models import BackupCodeSet, SecurityEvent
from security.backup_codes import redeem_backup_code
from tests.helpers import (
    PASSWORD,
    Person,
    codes_from,
    current_keys,
    give_codes,
    sheet_id_from,
    snapshot,
)

CONFIRM = "/settings/security/two-factor/backup-codes/confirm/"
STATUS = "/settings/security/two-factor/backup-codes/"
SHEET = STATUS + "new/"
SAVED = STATUS + "new/saved/"
DOWNLOAD = STATUS + "download/"


def test_each_page_links_to_the_next_by_its_contract_text(logged_in):
    client = logged_in.client
    steps = [
        ("/alice/", 'href="/settings/"', ">Settings<"),
        ("/settings/", 'href="/settings/security/"', ">Security<"),
        (
            "/settings/security/",
            'href="/settings/security/two-factor/"',
            ">Two-Factor Authentication<",
        ),
        ("/settings/security/two-factor/", f'href="{STATUS}"', ">Backup Codes<"),
        (STATUS, f'href="{CONFIRM}"', ">Get Backup Codes<"),
    ]
    for page, link, text in steps:
        html = client.get(page).get_data(as_text=True)
        assert link in html and text in html, page
    security = client.get("/settings/security/").get_data(as_text=True)
    assert ">Password<" in security and ">Login activity<" in security
    home = client.get("/").get_data(as_text=True)
    assert 'aria-label="Profile"' in home and 'href="/alice/"' in home
    assert "Confirm it's you" in client.get(CONFIRM).get_data(as_text=True)


def element(html: str, tag: str, text: str, **attributes: str) -> bool:
    """Whether `html` has a <tag> with these attributes whose visible text is exactly `text`."""
    for match in re.finditer(rf"<{tag}\b([^>]*)>(.*?)</{tag}>", html, re.S):
        attrs, inner = match.groups()
        visible = re.sub(r"<[^>]+>", "", inner).strip()
        wanted = all(
            f'{name.rstrip("_").replace("_", "-")}="{value}"' in attrs
            for name, value in attributes.items()
        )
        if visible == text and wanted:
            return True
    return False


def test_every_row_of_the_page_table_by_its_visible_texts(client, user):
    """DESIGN's page table, row by row, through the test client: labels, buttons, links."""
    person = Person(client)
    login = client.get("/accounts/login/").get_data(as_text=True)
    # Row 1 (and R1): the log-in page.
    assert element(login, "label", "Phone number, username, or email", for_="identifier")
    assert element(login, "label", "Password", for_="password")
    assert element(login, "button", "Log in", type="submit")
    assert element(login, "button", "Forgot password?", formaction="/accounts/password/reset/")
    assert element(login, "a", "Sign up", href="/accounts/signup/")
    person.login()
    profile = client.get("/alice/").get_data(as_text=True)
    # Row 2: the bottom bar's right-most item is the profile picture, named Profile.
    bar = re.search(r'<nav class="bottom-bar".*?</nav>', profile, re.S).group(0)
    tabs = re.findall(r"<a\b[^>]*>", bar)
    assert 'aria-label="Profile"' in tabs[-1] and 'href="/alice/"' in tabs[-1]
    # Row 3: the Options button is the summary of a <details>: the menu opens without JavaScript.
    menu = re.search(r"<details\b.*?</details>", profile, re.S).group(0)
    assert re.search(r'<summary\b[^>]*aria-label="Options"', menu)
    assert "<script" not in menu
    # Row 4: the menu holds Settings and Log out (a POST form with its CSRF token).
    assert element(menu, "a", "Settings", href="/settings/")
    assert element(menu, "button", "Log out", type="submit")
    assert 'action="/accounts/logout/"' in menu and 'name="csrf_token"' in menu
    # Row 9: "Confirm it's you".
    confirm = client.get(CONFIRM).get_data(as_text=True)
    assert element(confirm, "h1", "Confirm it's you")
    assert element(confirm, "label", "Password", for_="password")
    assert element(confirm, "button", "Confirm", type="submit")
    # Row 10: a GET page after the password POST, with the sheet's actions; Print and Copy are
    # buttons JavaScript reveals.
    posted = person.submit(CONFIRM, {"password": PASSWORD})
    assert posted.status_code == 303 and posted.location == SHEET
    sheet = client.get(SHEET).get_data(as_text=True)
    actions = re.search(r'<div class="sheet-actions.*?</div>', sheet, re.S).group(0)
    assert element(actions, "button", "Print", data_action="print")
    assert element(actions, "button", "Copy", data_action="copy")
    assert element(actions, "button", "Download", type="submit")
    assert element(actions, "a", "I saved my codes", href=SAVED)
    # Row 10a: "Saved?": type back code #k.
    saved = client.get(SAVED).get_data(as_text=True)
    assert re.search(r"<h1>Type code #(?:[1-9]|10) from your new sheet</h1>", saved)
    assert element(saved, "label", "Code from your new sheet", for_="code")
    assert element(saved, "button", "Use these codes", type="submit")
    # Row 10, replacing a set: "Void my old codes now".
    person.save_codes(codes_from(sheet))
    person.submit(CONFIRM, {"password": PASSWORD})
    replacing = client.get(SHEET).get_data(as_text=True)
    assert element(replacing, "button", "Void my old codes now", type="submit")


def test_status_before_any_codes(logged_in):
    assert "Not set up" in logged_in.client.get("/settings/security/two-factor/").get_data(
        as_text=True
    )
    assert "No codes yet" in logged_in.client.get(STATUS).get_data(as_text=True)
    home = logged_in.client.get("/").get_data(as_text=True)
    assert "You have no backup codes" in home


def test_confirming_the_password_shows_ten_numbered_codes_on_a_get_page(app, logged_in):
    """Checklist 6/7: the sheet is a GET page after the password POST, never cached; once saved,
    no code appears on any page again."""
    response = logged_in.submit(CONFIRM, {"password": PASSWORD})
    assert response.status_code == 303 and response.location == SHEET
    response = logged_in.client.get(SHEET)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    html = response.get_data(as_text=True)
    codes = codes_from(html)
    assert len(codes) == 10 and len(set(codes)) == 10
    for number in range(1, 11):
        assert f'<span class="code-number">{number}.</span>' in html
    with app.app_context():
        code_set = db.session.scalar(select(BackupCodeSet))
    assert code_set.public_id in html and "alice" in html
    for action in ("Print", "Download", "Copy"):
        assert re.search(rf"<button\b[^>]*>{action}</button>", html), action
    assert re.search(rf'<a\b[^>]*href="{SAVED}">I saved my codes</a>', html)
    assert "Use at</dt><dd>http://localhost</dd>" in html
    logged_in.save_codes(codes)
    # Checklist 6: once saved, no code appears on any page afterwards.
    for page in (
        "/",
        "/alice/",
        "/settings/",
        "/settings/security/",
        "/settings/security/two-factor/",
        STATUS,
        CONFIRM,
        SHEET,
    ):
        later = logged_in.client.get(page, follow_redirects=True).get_data(as_text=True)
        for code in codes:
            assert code not in later and f"{code[:4]} {code[4:]}" not in later
    status = logged_in.client.get(STATUS).get_data(as_text=True)
    assert "10 of 10" in status and code_set.public_id in status
    with app.app_context():
        kinds = db.session.scalars(select(SecurityEvent.kind)).all()
        details = db.session.scalars(select(SecurityEvent.detail)).all()
    assert "codes_generated" in kinds and "backup_codes_saved" in kinds
    assert not any(code in detail for code in codes for detail in details)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("not my password", "That password is not right. Nothing was changed."),
        ("", "Enter your password."),
    ],
)
def test_wrong_password_generates_nothing_and_old_codes_still_work(
    app, logged_in, user, password, message
):
    """Checklist 4: a form error, no new codes, previous codes still valid."""
    old = give_codes(app, user)
    before = snapshot(app, ignore=("attempt_counters", "security_events"))
    response = logged_in.submit(CONFIRM, {"password": password})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and message in html
    assert codes_from(html) == []
    assert snapshot(app, ignore=("attempt_counters", "security_events")) == before
    with app.app_context():
        assert redeem_backup_code(db.session, current_keys(), user, old[0]) is not None


def test_getting_codes_is_never_a_get_request(app, logged_in):
    """Checklist 6: GET shows only the password form."""
    html = logged_in.client.get(CONFIRM).get_data(as_text=True)
    assert codes_from(html) == []
    with app.app_context():
        assert db.session.scalar(select(BackupCodeSet)) is None


def test_regenerating_replaces_the_sheet(app, logged_in, user):
    first = logged_in.get_codes()
    second = logged_in.get_codes()
    assert set(first) != set(second)
    with app.app_context():
        for code in set(first) - set(second):
            assert redeem_backup_code(db.session, current_keys(), user, code) is None


def test_download_is_the_servers_sheet_whatever_is_posted(app, logged_in):
    """The .txt comes from the server's copy of this session's sheet: posted fields (ten
    00000000, another set id) change nothing; a saved sheet is no longer downloadable."""
    logged_in.submit(CONFIRM, {"password": PASSWORD})
    html = logged_in.client.get(SHEET).get_data(as_text=True)
    codes = codes_from(html)
    with app.app_context():
        set_id = db.session.scalar(select(BackupCodeSet.public_id))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    forged = {
        "csrf_token": token,
        "sheet": sheet_id_from(html),
        "set_id": "ZZZZ",
        "codes": " ".join(["00000000"] * 10),
    }
    response = logged_in.client.post(DOWNLOAD, data=forged)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="sparekey-backup-codes-alice-{set_id}.txt"'
    )
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    assert "Account: alice" in text and f"Set: {set_id}" in text and "Created: " in text
    assert "Use at: http://localhost" in text and "ZZZZ" not in text
    assert re.findall(r"\d{4} \d{4}", text) == [f"{c[:4]} {c[4:]}" for c in codes]
    assert "0000 0000" not in text and "Forgot password?" in text
    # The copy on the page is the same text.
    assert html_unescape(re.search(r"<pre hidden data-codes-text>(.*?)</pre>", html, re.S)[1]) == (
        text.replace("\r\n", "\n")
    )
    # A form from an older sheet of the same session gets no file of the newer one.
    assert logged_in.client.post(DOWNLOAD, data={**forged, "sheet": "ZZZZ"}).status_code == 302
    # Saved: the plaintext is gone, and so is the download.
    logged_in.save_codes(codes)
    response = logged_in.client.post(DOWNLOAD, data=forged)
    assert response.status_code == 302
    followed = logged_in.client.get(response.location).get_data(as_text=True)
    assert "no longer waiting" in followed


def test_confirm_step_checks_the_password_with_one_bcrypt_call(logged_in):
    with mock.patch.object(bcrypt, "checkpw", wraps=bcrypt.checkpw) as checkpw:
        logged_in.submit(CONFIRM, {"password": "wrong password"})
    assert checkpw.call_count == 1


def test_low_codes_warning_at_two_or_fewer(app, logged_in, user):
    codes = give_codes(app, user)
    with app.app_context():
        for code in codes[:7]:
            redeem_backup_code(db.session, current_keys(), user, code)
            db.session.commit()
    assert "Only" not in logged_in.client.get("/").get_data(as_text=True)
    with app.app_context():
        redeem_backup_code(db.session, current_keys(), user, codes[7])
        db.session.commit()
    home = logged_in.client.get("/").get_data(as_text=True)
    assert "2 of 10 codes left" in home and "Only 2 backup codes left" in home
    status = logged_in.client.get(STATUS).get_data(as_text=True)
    assert "Only 2 codes left. Get new backup codes before you run out." in status
    assert "#1, #2, #3, #4, #5, #6, #7, #8" in status


def test_all_codes_used(app, logged_in, user):
    """Checklist 79."""
    codes = give_codes(app, user)
    with app.app_context():
        for code in codes:
            redeem_backup_code(db.session, current_keys(), user, code)
            db.session.commit()
    status = logged_in.client.get(STATUS).get_data(as_text=True)
    assert "0 of 10" in status and "You have used all 10 codes. Get new backup codes now" in status


def test_the_event_insert_failing_over_http_changes_nothing(app, logged_in, user):
    """The same fault through the page: the error page claims only what is true (all or
    nothing), and nothing changed: no sheet, no event, the old set works."""
    old = give_codes(app, user)
    before = snapshot(app, ignore=("attempt_counters", "user_sessions"))

    def refuse_insert(mapper, connection, target):
        if target.kind == "codes_generated":
            raise RuntimeError("the event's insert failed")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    sqlalchemy_event.listen(SecurityEvent, "before_insert", refuse_insert)
    try:
        response = logged_in.submit(CONFIRM, {"password": PASSWORD})
    finally:
        sqlalchemy_event.remove(SecurityEvent, "before_insert", refuse_insert)
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "happened completely or not at all" in body and "Nothing was changed" not in body
    assert snapshot(app, ignore=("attempt_counters", "user_sessions")) == before
    with app.app_context():
        assert redeem_backup_code(db.session, current_keys(), user, old[0]) is not None
        db.session.commit()
