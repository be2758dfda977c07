"""Security events: recorded for the owner, shown under Security, and never holding a secret."""

from __future__ import annotations

import json
import logging

from sqlalchemy import select

from extensions import db
from logs import JsonLines
from models import SecurityEvent
from tests.helpers import PASSWORD, Person

NEW = "another fine passphrase"


def test_the_whole_story_is_recorded_without_secrets(app, user, caplog):
    """Checklist 14/75: one structured line per event, no password or code anywhere.

    Checklist 38 (in the app; Sparekey sends no email): the owner's Security page shows the new
    codes, the code used and the recovery."""
    caplog.set_level(logging.DEBUG)
    person = Person(app.test_client())
    person.login("alice", "wrong password!")
    person.login()
    person.get_codes()
    codes = person.get_codes()
    person.logout()
    person.start_recovery("alice")
    person.enter_code("00000000" if "00000000" not in codes else "11111111")
    person.enter_code(codes[4])
    person.submit("/accounts/password/new/", {"password": NEW, "confirm": NEW})
    with app.app_context():
        rows = db.session.scalars(select(SecurityEvent).order_by(SecurityEvent.id)).all()
        kinds = [row.kind for row in rows]
        stored = " ".join(f"{row.kind} {row.detail} {row.ip} {row.user_agent}" for row in rows)
    for kind in (
        "login_failed",
        "logged_in",
        "codes_generated",
        "backup_code_failed",
        "backup_code_used",
        "recovered_with_backup_code",
        "password_changed",
    ):
        assert kind in kinds
    secrets = [PASSWORD, NEW, *codes, *(f"{c[:4]} {c[4:]}" for c in codes)]
    log_text = caplog.text
    for secret in secrets:
        assert secret not in stored
        assert secret not in log_text
    lines = [JsonLines().format(r) for r in caplog.records if r.name == "sparekey.security"]
    parsed = [json.loads(line) for line in lines]
    assert {"event", "user_id", "ip", "outcome"} <= set(parsed[0])
    page = person.client.get("/settings/security/").get_data(as_text=True)
    assert "Account recovered with a backup code" in page
    assert "Backup code used (code #5, 9 left)" in page
    events_page = person.client.get("/settings/security/events/").get_data(as_text=True)
    assert events_page.count("New backup codes created") == 2


def test_log_lines_escape_line_breaks(app, caplog):
    """Checklist 75: a name with CR/LF cannot forge a second log line."""
    caplog.set_level(logging.INFO)
    Person(app.test_client()).login('mallory\r\n{"event": "forged"}', "whatever pw")
    lines = [JsonLines().format(r) for r in caplog.records if r.name == "sparekey.security"]
    assert lines and all("\n" not in line and "\r" not in line for line in lines)
