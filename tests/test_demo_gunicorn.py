"""Issue 15 under a real gunicorn on PostgreSQL: fifty visitors press "Try the demo" at once and
each walks both journeys; then pruning past the deadline removes every row they owned."""

from __future__ import annotations

import os
import re
from datetime import timedelta

from sqlalchemy import func, select

import clock
import tools.gunicorn as gunicorn_launcher
from blueprints.context import app_context_of
from extensions import db
from models import (
    BackupCode,
    User,
)
from security.demo import rules_from_config
from security.maintenance import prune
from tests.helpers import counter_keys, forget_migrations, migrate, postgresql_url, rows_of
from tools.inprocess import CONFIRM, SAVED, SHEET, codes_from, sheet_id_from
from tools.live import CODE_PAGE, Browser, at_once, csrf_from

VISITORS = 50
NAME = re.compile(r"Username <code>(demo-[a-z]+-[a-z]+-\d\d)</code>")
SHOWN_PASSWORD = re.compile(r"Password <code>([a-z]+-[a-z]+-[a-z]+-\d\d)</code>")


class Walk:
    """One visitor's browser, keeping every answer that was not the one expected."""

    def __init__(self, base: str, index: int) -> None:
        # Each visitor has an address of its own (the server trusts one proxy hop).
        self.browser = Browser(base, {"X-Forwarded-For": f"10.15.{index // 250}.{index % 250 + 1}"})
        self.wrong: list[tuple[str, int, str]] = []

    def expect(self, step: str, answer: tuple[int, str, str], status: int, where: str = "") -> str:
        got, location, body = answer
        if got != status or (where and location != where):
            self.wrong.append((step, got, location or body[:300]))
        return body

    def walk(self) -> tuple[str, str, list]:
        b = self.browser
        token = csrf_from(self.expect("welcome", b.get("/"), 200))
        self.expect(
            "try the demo", b.post("/accounts/demo/start/", {"csrf_token": token}), 302, "/tour/"
        )
        tour = self.expect("tour page", b.get("/tour/"), 200)
        name, password = NAME.search(tour), SHOWN_PASSWORD.search(tour)
        if name is None or password is None:
            self.wrong.append(("login shown", 0, tour[:300]))
            return "", "", self.wrong
        username, secret = name.group(1), password.group(1)
        # Journey 1: Get Backup Codes → Confirm → the sheet → I saved my codes.
        token = csrf_from(self.expect("confirm page", b.get(CONFIRM), 200))
        self.expect("confirm", b.post(CONFIRM, {"csrf_token": token, "password": secret}), 303)
        sheet = self.expect("sheet", b.get(SHEET), 200)
        codes = codes_from(sheet)
        saved = self.expect("saved page", b.get(SAVED), 200)
        asked = re.search(r"Type code #(\d+) from your new sheet", saved)
        if len(codes) != 10 or asked is None:
            self.wrong.append(("sheet read", len(codes), saved[:300]))
            return username, secret, self.wrong
        data = {
            "csrf_token": csrf_from(saved),
            "code": codes[int(asked.group(1)) - 1],
            "sheet": sheet_id_from(saved),
        }
        self.expect("save", b.post(SAVED, data), 302)
        # Log out, then journey 2: Forgot password? → a backup code → a new password.
        token = csrf_from(self.expect("settings", b.get("/settings/"), 200))
        self.expect("log out", b.post("/accounts/logout/", {"csrf_token": token}), 302)
        token = b.ready_to_enter_code(username)
        self.expect(
            "use a code",
            b.post(CODE_PAGE, {"csrf_token": token, "code": codes[0]}),
            302,
            "/accounts/password/new/",
        )
        chosen = f"my own pass phrase {username}"
        token = csrf_from(self.expect("new password page", b.get("/accounts/password/new/"), 200))
        self.expect(
            "new password",
            b.post(
                "/accounts/password/new/",
                {"csrf_token": token, "password": chosen, "confirm": chosen},
            ),
            302,
        )
        home = self.expect("home after", b.get("/"), 200)
        if "the one you chose" not in home:
            self.wrong.append(("banner after", 0, home[:300]))
        # And in again with the new password, from the log-in page.
        token = csrf_from(self.expect("settings again", b.get("/settings/"), 200))
        self.expect("log out again", b.post("/accounts/logout/", {"csrf_token": token}), 302)
        got = b.log_in(username, chosen)
        if got != 302:
            self.wrong.append(("log in again", got, ""))
        self.expect("signed in at the end", b.get("/settings/"), 200)
        return username, chosen, self.wrong


def test_fifty_visitors_at_once_each_walk_both_journeys_in_a_sandbox_of_their_own(app, tmp_path):
    url = postgresql_url()
    migrate(app)
    try:
        env = {
            **os.environ,
            "SPAREKEY_ENV": "test",
            "DATABASE_URL": url,
            "PASSWORD_BCRYPT_COST": "4",
            "BACKUP_CODE_BCRYPT_COST": "4",
            "TRUSTED_PROXIES": "1",
        }
        spec = "app:create_app({'PROPAGATE_EXCEPTIONS': False, 'RATELIMIT_ENABLED': True})"
        with gunicorn_launcher.gunicorn(tmp_path, env, 2, spec) as base:
            walks = [Walk(base, index) for index in range(VISITORS)]
            results = at_once(VISITORS, lambda i: walks[i].walk(), timeout=300)
        assert None not in results, "a visitor was still walking after 300 s"
        problems = [(i, wrong) for i, (_, _, wrong) in enumerate(results) if wrong]
        assert problems == [], problems
        names = [name for name, _, _ in results]
        assert len(set(names)) == VISITORS
        with app.app_context():
            users = db.session.execute(
                select(User.id, User.username).where(User.username.in_(names))
            ).all()
            assert len(users) == VISITORS and all(
                db.session.get(User, u.id).is_sandbox for u in users
            )
            ids = [u.id for u in users]
            # Each walked both journeys: one code used, one recovery, its own rows only.
            used = db.session.scalar(
                select(func.count())
                .select_from(BackupCode)
                .where(BackupCode.user_id.in_(ids), BackupCode.used_at.is_not(None))
            )
            assert used == VISITORS
            keys = counter_keys(app, ids)
            before = rows_of(app, ids, keys)
            assert before["users"] == VISITORS and before["backup_codes"] == 10 * VISITORS
            assert before["user_sessions"] == VISITORS and before["security_events"] > 0
            # Pruned at once they are all still on; past the deadline, all go with every row.
            ctx = app_context_of(app)
            rules = rules_from_config(app.config)
            assert prune(ctx, rules)["demo sandboxes"] == 0
            clock.set_now(clock.now() + timedelta(seconds=rules.ttl_seconds + 60))
            try:
                assert prune(ctx, rules)["demo sandboxes"] == VISITORS
            finally:
                clock.set_now(None)
            after = rows_of(app, ids, keys)
            assert set(after.values()) == {0}, after
            print("rows per table before pruning:", before, "after:", after)
    finally:
        forget_migrations(app)
