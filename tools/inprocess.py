"""The app in this process: fresh tables, and a person-like client of Flask's test client.

Shared by the tests and the in-process benchmarks.
"""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from extensions import db
from security.backup_codes import CODES_PER_SET
from tools.live import csrf_from

PASSWORD = "purple elephant sunrise"
CONFIRM = "/settings/security/two-factor/backup-codes/confirm/"
SHEET = "/settings/security/two-factor/backup-codes/new/"
SAVED = "/settings/security/two-factor/backup-codes/new/saved/"
CODE_PATTERN = re.compile(r'<span class="code-value">(\d{4}) (\d{4})</span>')


def fresh_tables(app: Flask) -> None:
    """Empty tables for `app`: a shared (PostgreSQL) database is dropped and re-created."""
    with app.app_context():
        if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
            db.drop_all()
        db.create_all()


def sheet_id_from(html: str) -> str:
    """The sheet a page's forms act on (their hidden `sheet` field)."""
    found = re.search(r'name="sheet" type="hidden" value="([^"]+)"', html)
    if found is None:
        raise AssertionError("no sheet field on the page")
    return found.group(1)


def codes_from(html: str) -> list[str]:
    return [a + b for a, b in CODE_PATTERN.findall(html)]


class Person:
    """A browser-like client: it reads the CSRF token from the page it submits, as a form would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def submit(self, page: str, data: dict, action: str | None = None, **kwargs):
        html = self.client.get(page).get_data(as_text=True)
        return self.client.post(
            action or page, data={"csrf_token": csrf_from(html), **data}, **kwargs
        )

    def signup(self, username: str = "alice", password: str = PASSWORD, **extra):
        return self.submit(
            "/accounts/signup/", {"username": username, "password": password, **extra}
        )

    def login(self, identifier: str = "alice", password: str = PASSWORD, **kwargs):
        return self.submit(
            "/accounts/login/", {"identifier": identifier, "password": password}, **kwargs
        )

    def logout(self):
        return self.submit("/settings/", {}, action="/accounts/logout/")

    def start_new_codes(self, password: str = PASSWORD) -> list[str]:
        """Get Backup Codes → Confirm: the new sheet's codes (a replacement is not in use yet)."""
        self.submit(CONFIRM, {"password": password})
        html = self.client.get(SHEET).get_data(as_text=True)
        codes = codes_from(html)
        if len(codes) != CODES_PER_SET:
            raise AssertionError(html)
        return codes

    def save_codes(self, codes: list[str]):
        """I saved my codes: type back the code the page asks for."""
        html = self.client.get(SAVED).get_data(as_text=True)
        asked = re.search(r"Type code #(\d+) from your new sheet", html)
        if asked is None:
            raise AssertionError(html)
        data = {"code": codes[int(asked.group(1)) - 1], "sheet": sheet_id_from(html)}
        return self.submit(SAVED, data)

    def get_codes(self, password: str = PASSWORD) -> list[str]:
        """The whole journey: confirm, read the sheet, save it; the codes are in use after."""
        codes = self.start_new_codes(password)
        saved = self.save_codes(codes)
        if saved.status_code != 302:
            raise AssertionError(saved.get_data(as_text=True))
        return codes

    def start_recovery(self, identifier: str = "alice"):
        return self.submit(
            "/accounts/password/reset/",
            {"identifier": identifier, "use_backup_code": "1"},
        )

    def enter_code(self, code: str, **kwargs):
        return self.submit("/accounts/password/reset/backup-code/", {"code": code}, **kwargs)
