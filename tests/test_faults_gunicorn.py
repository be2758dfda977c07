"""Faults under a real gunicorn, the way `make serve` runs: the database, then Redis, cut through a
TCP relay while people sign in and use backup codes. What an operator and a person see, and what
the tables hold afterwards."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

import redis
from sqlalchemy import func, select

import tools.gunicorn as gunicorn_launcher
from extensions import db
from models import BackupCode, SecurityEvent, User
from security import events
from tests.helpers import (
    PASSWORD,
    forget_migrations,
    give_codes,
    make_user,
    migrate,
    redis_url,
)
from tools.live import CODE_PAGE, Browser
from tools.relay import relay_to

PEOPLE = 4
STYLED = "Something went wrong"
BARE = "Internal Server Error"


def server_env(database_url: str, **extra: str) -> dict:
    return {
        **os.environ,
        "SPAREKEY_ENV": "test",
        "DATABASE_URL": database_url,
        "PASSWORD_BCRYPT_COST": "4",
        "BACKUP_CODE_BCRYPT_COST": "4",
        **extra,
    }


def readyz(base: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    return status, json.loads(body), time.monotonic() - started


class Recorded(Browser):
    """A browser that keeps every answer it got, with whether the relay was cut at the time."""

    def __init__(self, base: str, seen: list, cut: threading.Event) -> None:
        super().__init__(base)
        self.seen, self.cut = seen, cut

    def _open(self, request):
        answer = super()._open(request)
        self.seen.append((self.cut.is_set(), *answer))
        return answer


def sign_in_and_use_codes(base: str, name: str, codes: list[str], seen, cut, stop) -> None:
    """Log in, log out, then "Forgot password?" with the next code, over and over until `stop`;
    a step that meets an error page (no form on it) starts the round again."""
    number = 0
    while not stop.is_set() and number < 8:
        browser = Recorded(base, seen, cut)
        try:
            browser.log_in(name, PASSWORD)
            token = browser.ready_to_enter_code(name)
            browser.post(CODE_PAGE, {"csrf_token": token, "code": codes[number]})
        except AssertionError:
            pass  # an error page has no form: try again
        number += 1
        time.sleep(0.05)


def test_a_database_cut_while_people_sign_in_and_use_codes(app, tmp_path, relayed_database_url):
    """Two workers; four people log in and spend codes; the database goes away for two seconds.
    Every failure is the styled page, never the server's bare one; /readyz says 503 within 3 s;
    after the return every request succeeds; and each code is used exactly when its event was
    written (no half-written state)."""
    relay, url = relayed_database_url
    migrate(app)
    try:
        names = [f"person{n}" for n in range(PEOPLE)]
        codes = {name: give_codes(app, make_user(app, name, PASSWORD)) for name in names}
        spec = "app:create_app({'PROPAGATE_EXCEPTIONS': False, 'FAILURES_BEFORE_BACKOFF': 1000})"
        seen: list = []
        cut, stop = threading.Event(), threading.Event()
        with gunicorn_launcher.gunicorn(tmp_path, server_env(url), 2, spec) as base:
            assert readyz(base)[0] == 200
            people = [
                threading.Thread(
                    target=sign_in_and_use_codes,
                    args=(base, name, codes[name], seen, cut, stop),
                )
                for name in names
            ]
            for person in people:
                person.start()
            time.sleep(1.0)
            cut.set()
            relay.cut()
            try:
                status, body, elapsed = readyz(base)
                assert status == 503 and body["checks"]["database"] == "failed", body
                assert elapsed < 3, elapsed
                time.sleep(2.0)
            finally:
                relay.resume()
                cut.clear()
            give_up = time.monotonic() + 30
            while readyz(base)[0] != 200:
                assert time.monotonic() < give_up, "never ready again"
                time.sleep(0.2)
            stop.set()
            for person in people:
                person.join(60)
            # After the return, everything works: a log-in and a recovery with an unused code.
            for name in names:
                browser = Browser(base)
                assert browser.log_in(name, PASSWORD) == 302
                token = browser.ready_to_enter_code(name)
                status, location, _ = browser.post(
                    CODE_PAGE, {"csrf_token": token, "code": codes[name][9]}
                )
                assert (status, location) == (302, "/accounts/password/new/"), name
        failed = [(status, body) for _, status, _, body in seen if status >= 500]
        bad = [
            (s, re.search(r"<title>(.*?)</title>", b) or b[:200])
            for s, b in failed
            if STYLED not in b or BARE in b
        ]
        assert bad == [], bad
        assert len(seen) > 10 * PEOPLE
        # The cut met requests: people saw the error page while the database was away.
        assert any(during and status >= 500 for during, status, _, _ in seen)
        with app.app_context():
            for name in names:
                user_id = db.session.scalar(select(User.id).where(User.username == name))
                used = db.session.scalar(
                    select(func.count())
                    .select_from(BackupCode)
                    .where(BackupCode.user_id == user_id, BackupCode.used_at.is_not(None))
                )
                written = db.session.scalar(
                    select(func.count())
                    .select_from(SecurityEvent)
                    .where(SecurityEvent.user_id == user_id, SecurityEvent.kind == events.CODE_USED)
                )
                assert used == written and used >= 1, (name, used, written)
    finally:
        forget_migrations(app)


def test_a_redis_cut_under_gunicorn_is_one_line_a_red_readyz_and_redis_again_after(app, tmp_path):
    """Limits counted in Redis through a relay; Redis goes away: requests still answer, counted
    per process, with one warning line and /readyz red; Redis comes back: limits are counted
    there again and /readyz is green."""
    real = urlsplit(redis_url())
    direct = redis.Redis.from_url(redis_url())
    prefix = f"sparekey-fault-{uuid.uuid4().hex}"
    migrate(app)
    try:
        with relay_to(real.hostname or "127.0.0.1", real.port or 6379) as relay:
            storage = f"redis://127.0.0.1:{relay.port}{real.path or '/0'}"
            env = server_env(
                app.config["SQLALCHEMY_DATABASE_URI"],
                RATELIMIT_STORAGE_URI=storage,
            )
            spec = (
                f"app:create_app({{'RATELIMIT_ENABLED': True, 'RATELIMIT_KEY_PREFIX': {prefix!r}}})"
            )
            with gunicorn_launcher.gunicorn(tmp_path, env, 1, spec) as base:
                browser = Browser(base)
                assert browser.log_in("nobody", "some password") == 200
                assert direct.keys(f"*{prefix}*"), "counted in Redis"
                direct.delete(*direct.keys(f"*{prefix}*"))
                relay.cut()
                try:
                    for n in range(4):
                        assert Browser(base).log_in(f"nobody{n}", "some password") == 200
                    status, body, elapsed = readyz(base)
                    assert status == 503 and body["checks"]["redis"] == "failed", body
                    assert elapsed < 3
                    assert direct.keys(f"*{prefix}*") == []
                finally:
                    relay.resume()
                give_up = time.monotonic() + 70
                while not direct.keys(f"*{prefix}*"):
                    assert time.monotonic() < give_up, "the limits never went back to Redis"
                    assert Browser(base).log_in("nobody9", "some password") == 200
                    time.sleep(0.5)
                assert readyz(base)[0] == 200
            log = (tmp_path / "gunicorn-1w.err").read_text()
            warnings = [line for line in log.splitlines() if "storage unreachable" in line]
            assert len(warnings) == 1, warnings
            assert json.loads(warnings[0])["level"] == "WARNING"
    finally:
        for key in direct.keys(f"*{prefix}*"):
            direct.delete(key)
        direct.close()
        forget_migrations(app)
