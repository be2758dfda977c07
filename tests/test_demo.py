"""Issue 15: "Try the demo" makes a sandbox account per visitor; one visitor cannot break the demo
for another; sandboxes expire and are pruned with everything they own."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest
from flask import Flask
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, or_, select

from blueprints.context import app_context_of
from extensions import db
from models import (
    AttemptCounter,
    BackupCode,
    BackupCodeSet,
    CodeSheet,
    SecurityEvent,
    TrustedDevice,
    User,
    UserSession,
)
from security.attempts import account_key
from security.demo import DEMO_FULL, NAMES_TAKEN, SANDBOX_CREATED
from security.email_address import SANDBOX_NO_MAIL, change_email, send_verification
from security.notices import CODE_USED, Outbox, tell_owner
from security.outcomes import Reason, Refused
from tests.helpers import (
    OWNED,
    PASSWORD,
    Person,
    count,
    counter_keys,
    make_user,
    rows_of,
    snapshot,
    wrong_code,
)
from tests.test_metrics import TOKEN, moved
from tools.inprocess import codes_from

START = "/accounts/demo/start/"


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject))


NAME = re.compile(r"Username <code>(demo-[a-z]+-[a-z]+-\d\d)</code>")
SHOWN_PASSWORD = re.compile(r"Password <code>([a-z]+-[a-z]+-[a-z]+-\d\d)</code>")


def try_the_demo(person: Person, **kwargs):
    return person.submit("/", {}, action=START, **kwargs)


def login_shown(html: str) -> tuple[str, str | None]:
    name = NAME.search(html)
    assert name is not None, html
    password = SHOWN_PASSWORD.search(html)
    return name.group(1), password.group(1) if password else None


def new_visitor(app: Flask) -> tuple[Person, str, str]:
    """A browser that pressed Try the demo: (its person, the username, the password shown)."""
    person = Person(app.test_client())
    response = try_the_demo(person)
    assert (response.status_code, response.location) == (302, "/tour/")
    name, password = login_shown(person.client.get("/tour/").get_data(as_text=True))
    assert password is not None
    return person, name, password


def user_named(app: Flask, name: str) -> User | None:
    with app.app_context():
        return db.session.scalar(select(User).where(User.username == name))


def test_try_the_demo_signs_in_a_sandbox_of_its_own_with_its_login_on_every_page(app, frozen_clock):
    person, name, password = new_visitor(app)
    sandbox = user_named(app, name)
    assert sandbox is not None and sandbox.is_sandbox
    assert sandbox.sandbox_expires_at == frozen_clock() + timedelta(hours=2)
    assert sandbox.email is None and sandbox.phone is None
    assert (sandbox.avatar, sandbox.display_name) == ("demo.svg", "Dana Demo")
    # Not a sign-up form's name: a hyphen, which sign-up never accepts.
    users = count(app, User)
    refused = Person(app.test_client()).signup(name, "a long pass phrase")
    assert refused.status_code == 200
    assert "lowercase letters, digits, dots and underscores" in refused.get_data(as_text=True)
    assert count(app, User) == users
    for page in ("/", "/settings/", f"/{name}/", "/settings/security/two-factor/backup-codes/"):
        html = person.client.get(page).get_data(as_text=True)
        assert login_shown(html) == (name, password), page
        assert "This is a demo account." in html and ">11:00 UTC</time>" in html, page
        assert "Start over" in html
    with app.app_context():
        kinds = db.session.execute(
            select(SecurityEvent.kind, SecurityEvent.detail)
            .where(SecurityEvent.user_id == sandbox.id)
            .order_by(SecurityEvent.id)
        ).all()
    assert [tuple(k) for k in kinds] == [("signed_up", SANDBOX_CREATED), ("logged_in", "")]
    # The password shown logs back in.
    person.logout()
    assert person.login(name, password).status_code == 302


def test_a_real_account_sees_no_demo_banner(app, logged_in):
    html = logged_in.client.get("/").get_data(as_text=True)
    assert "demo account" not in html and "Start over" not in html


def test_what_one_visitor_does_never_touches_another(app):
    """Visitor A gets codes, logs out, recovers with a code, sets a new password, turns on
    nothing else; visitor B, signed in all along, stays signed in and keeps its own login."""
    a, a_name, a_password = new_visitor(app)
    b, b_name, b_password = new_visitor(app)
    assert a_name != b_name
    codes = a.get_codes(a_password)
    a.logout()
    a.start_recovery(a_name)
    assert a.enter_code(codes[0]).location == "/accounts/password/new/"
    chosen = "a brand new pass phrase"
    response = a.submit("/accounts/password/new/", {"password": chosen, "confirm": chosen})
    assert response.status_code == 302
    # A's banner no longer shows the generated password (it is not A's password any more).
    html = a.client.get("/").get_data(as_text=True)
    assert login_shown(html) == (a_name, None) and "the one you chose" in html
    assert a_password not in html
    # B is still in, and B's generated password still works in a fresh browser.
    assert b.client.get("/").status_code == 200
    assert login_shown(b.client.get("/").get_data(as_text=True)) == (b_name, b_password)
    assert Person(app.test_client()).login(b_name, b_password).status_code == 302
    assert Person(app.test_client()).login(a_name, chosen).status_code == 302


def test_journey_two_logged_out_still_shows_this_browsers_login_and_the_tour_knows_it(app):
    person, name, password = new_visitor(app)
    codes = person.get_codes(password)
    person.submit("/tour/", {"journey": "use"}, action="/tour/start/")
    login_page = person.client.get("/accounts/login/").get_data(as_text=True)
    assert "Your demo account." in login_page
    assert login_shown(login_page) == (name, password)
    assert f"Yours is {name}." in login_page
    assert "Start over with a new demo account" in login_page
    person.start_recovery(name)
    code_page = person.client.get("/accounts/password/reset/backup-code/").get_data(as_text=True)
    assert "Type code #1 from your sheet" in code_page
    assert person.enter_code(codes[0]).status_code == 302
    # Another browser has no demo cookie: its log-in page shows no one's login.
    other = Person(app.test_client()).client.get("/accounts/login/").get_data(as_text=True)
    assert name not in other and "Your demo account." not in other


def test_the_tour_gives_the_generated_password_where_journey_one_asks_for_it(app):
    person, _, password = new_visitor(app)
    person.submit("/tour/", {"journey": "get"}, action="/tour/start/")
    page = person.client.get("/settings/security/two-factor/backup-codes/confirm/")
    assert f"Your demo password is {password}." in page.get_data(as_text=True)


def test_start_over_replaces_this_browsers_sandbox(app):
    person, first, _ = new_visitor(app)
    person.get_codes(login_shown(person.client.get("/").get_data(as_text=True))[1])
    first_id = user_named(app, first).id
    again = try_the_demo(person)
    assert again.location == "/tour/"
    second, _ = login_shown(person.client.get("/").get_data(as_text=True))
    assert second != first and user_named(app, first) is None
    # Everything of the first went with it (SQLite may give the new one the same id, so the
    # tables are counted whole: one account, its session, device and two events, no codes).
    assert count(app, User) == 1 and user_named(app, second).is_sandbox
    assert [count(app, model) for model in (UserSession, TrustedDevice, SecurityEvent)] == [1, 1, 2]
    assert [count(app, model) for model in (BackupCodeSet, BackupCode, CodeSheet)] == [0, 0, 0]
    assert first_id > 0


def test_a_demo_cookie_naming_a_real_account_deletes_nothing(app, user):
    """The cookie is signed, and even a validly signed one naming a real account (id and name)
    deletes only a sandbox: "Start over" never deletes anything else."""
    signed = URLSafeSerializer(app.config["SECRET_KEY"], salt="sparekey demo cookie")
    for value in ([user, "alice"], "forged"):
        person = Person(app.test_client())
        cookie = signed.dumps(value) if isinstance(value, list) else "WzEsImFsaWNlIl0.forged"
        person.client.set_cookie("sparekey_demo", cookie)
        assert try_the_demo(person).location == "/tour/"
        assert user_named(app, "alice") is not None
    assert count(app, User, User.sandbox_expires_at.is_not(None)) == 2


def test_a_sandbox_cannot_have_an_email_address_and_is_never_mailed(app, frozen_clock):
    person, name, password = new_visitor(app)
    before = snapshot(app)
    page = person.submit(
        "/settings/security/email/",
        {"change-email": "someone@example.com", "change-password": password, "change-submit": "1"},
    ).get_data(as_text=True)
    assert "cannot have an email address and never receives mail" in page
    assert snapshot(app) == before
    # The use cases refuse on their own, whatever a form sends; and were a sandbox ever given a
    # verified address, no notice would go to it.
    with app.app_context():
        sandbox = db.session.scalar(select(User).where(User.username == name))
        ctx = app_context_of(app)
        outbox = Outbox(mailer=RecordingMailer(), site="http://localhost")
        ctx = replace(ctx, outbox=outbox)
        assert change_email(ctx, sandbox, password, "x@example.com") == Refused(
            Reason.DEMO, SANDBOX_NO_MAIL
        )
        assert send_verification(ctx, sandbox) == Refused(Reason.DEMO, SANDBOX_NO_MAIL)
        sandbox.email, sandbox.email_verified_at = "x@example.com", frozen_clock()
        assert tell_owner(ctx, sandbox, CODE_USED, "code #1") is False
        assert outbox.mailer.sent == []
        db.session.rollback()
    assert snapshot(app) == before


def test_a_sandbox_past_its_deadline_ends_at_its_next_request(app, frozen_clock):
    person, name, _ = new_visitor(app)
    user_id = user_named(app, name).id
    keys = counter_keys(app, [user_id])
    for minutes in range(20, 120, 20):  # in use all along: the session stays live
        frozen_clock(minutes=minutes)
        assert person.client.get("/").status_code == 200
    frozen_clock(hours=2, seconds=1)
    response = person.client.get("/settings/")
    assert response.status_code == 302
    home = person.client.get(response.location, follow_redirects=True).get_data(as_text=True)
    assert "Your demo account expired and was deleted." in home
    assert set(rows_of(app, [user_id], keys).values()) == {0}


def test_prune_deletes_sandboxes_that_are_over_with_every_row_they_own(app, runner, frozen_clock):
    """Made at T0: one used (codes, a recovery, a stranger's wrong code), one left idle, one
    still in use at T0+40 min; prune at T0+40 min deletes the idle one only, and at T0+2 h every
    sandbox; a real account is never touched."""
    real = make_user(app, "alice", PASSWORD)
    busy, busy_name, busy_password = new_visitor(app)
    _, idle_name, _ = new_visitor(app)
    codes = busy.get_codes(busy_password)
    Person(app.test_client()).start_recovery(busy_name)
    stranger = Person(app.test_client())
    stranger.start_recovery(busy_name)
    assert stranger.enter_code(wrong_code(codes, 0)).status_code == 200
    busy.client.get("/")
    ids = [user_named(app, n).id for n in (busy_name, idle_name)]
    keys = counter_keys(app, ids)
    before = rows_of(app, ids, keys)
    assert all(before[t] > 0 for t in ("users", "user_sessions", "backup_codes", "security_events"))
    assert before["attempt_counters"] > 0
    real_keys = counter_keys(app, [real])
    real_rows = rows_of(app, [real], real_keys)
    frozen_clock(minutes=20)
    busy.client.get("/")  # seen: the session's last_seen_at moves on
    frozen_clock(minutes=40)
    result = runner.invoke(args=["prune"])
    assert result.exit_code == 0, result.output
    assert "1 demo sandboxes" in result.output
    assert user_named(app, idle_name) is None and user_named(app, busy_name) is not None
    for minutes in (60, 80, 100):
        frozen_clock(minutes=minutes)
        busy.client.get("/")
    frozen_clock(hours=2)
    result = runner.invoke(args=["prune"])
    assert "1 demo sandboxes" in result.output
    assert set(rows_of(app, ids, keys).values()) == {0}
    assert rows_of(app, [real], real_keys) == real_rows
    assert count(app, User, User.sandbox_expires_at.is_not(None)) == 0


def test_at_the_cap_the_demo_is_full_and_nothing_changes(app_factory, frozen_clock):
    app = app_factory(DEMO_MAX_ACCOUNTS=2)
    new_visitor(app)
    new_visitor(app)
    before = snapshot(app)
    third = Person(app.test_client())
    response = try_the_demo(third)
    assert response.status_code == 503 and response.headers["Retry-After"] == "300"
    assert DEMO_FULL in response.get_data(as_text=True)
    assert snapshot(app) == before
    # Once one is over (idle for 30 minutes), the next visitor gets its place.
    frozen_clock(minutes=31)
    assert try_the_demo(third).location == "/tour/"
    assert count(app, User, User.sandbox_expires_at.is_not(None)) == 1


def test_one_address_can_make_only_so_many_sandboxes(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True, DEMO_RATE_LIMIT="2/minute")
    person = Person(app.test_client())
    assert try_the_demo(person).status_code == 302
    assert try_the_demo(person).status_code == 302
    before = count(app, User)
    assert try_the_demo(person).status_code == 429
    assert count(app, User) == before
    # Another address is not affected.
    other = Person(app.test_client())
    response = try_the_demo(other, environ_overrides={"REMOTE_ADDR": "10.0.0.9"})
    assert response.status_code == 302


def test_a_stranger_with_the_sandbox_name_cannot_lock_its_visitor_out(app_factory):
    """Guessing codes against a sandbox's name closes the way in for new browsers only: the
    visitor's own browser (a trusted device) still recovers with a code."""
    app = app_factory(FAILURES_BEFORE_BACKOFF=1000, MAX_CONSECUTIVE_FAILURES=100)
    person, name, password = new_visitor(app)
    codes = person.get_codes(password)
    person.logout()
    stranger = Person(app.test_client())
    stranger.start_recovery(name)
    for n in range(101):
        stranger.enter_code(wrong_code(codes, n))
    with app.app_context():
        closed = db.session.scalar(
            select(AttemptCounter).where(
                AttemptCounter.key == account_key(user_named(app, name).id)
            )
        )
        assert closed is not None and closed.code_failures >= 100
    person.start_recovery(name)
    assert person.enter_code(codes[0]).location == "/accounts/password/new/"


@pytest.fixture
def demo_host(app_factory):
    return app_factory(DEMO_MODE=True)


def test_demo_mode_replaces_sign_up_with_try_the_demo(demo_host):
    client = demo_host.test_client()
    assert client.get("/accounts/signup/").location == "/accounts/demo/"
    welcome = client.get("/").get_data(as_text=True)
    assert "This site is a public demo" in welcome and "Try the demo" in welcome
    assert 'href="/accounts/signup/"' not in welcome
    assert 'href="/accounts/signup/"' not in client.get("/accounts/login/").get_data(as_text=True)
    assert "Try the demo" in client.get("/accounts/demo/").get_data(as_text=True)


def test_demo_mode_commands_make_no_real_or_shared_account(demo_host):
    runner = demo_host.test_cli_runner()
    before = count(demo_host, User)
    made = runner.invoke(args=["create-user", "carol", "--password", "a long pass phrase"])
    assert made.exit_code != 0 and "DEMO_MODE is on" in made.output
    shared = runner.invoke(args=["demo"])
    assert shared.exit_code != 0 and "DEMO_MODE is on" in shared.output
    assert count(demo_host, User) == before


def test_sandbox_rows_are_only_the_visitors_own(app):
    """Two sandboxes' rows never name each other (every owned row's user_id is its own)."""
    a, a_name, a_password = new_visitor(app)
    b, b_name, b_password = new_visitor(app)
    a.get_codes(a_password)
    b.get_codes(b_password)
    a_id, b_id = user_named(app, a_name).id, user_named(app, b_name).id
    with app.app_context():
        for model in OWNED:
            owners = set(db.session.scalars(select(model.user_id).distinct()))
            assert owners <= {a_id, b_id}, model
        a_codes = db.session.scalar(
            select(func.count()).select_from(BackupCode).where(BackupCode.user_id == a_id)
        )
        assert a_codes == 10
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(UserSession)
                .where(or_(UserSession.user_id == a_id, UserSession.user_id == b_id))
            )
            == 2
        )
    assert codes_from(a.client.get("/").get_data(as_text=True)) == []


def test_presses_of_try_the_demo_are_counted_for_the_operator(app_factory):
    app = app_factory(METRICS_TOKEN=TOKEN, DEMO_MAX_ACCOUNTS=1)
    scraper = app.test_client()
    assert (
        moved(scraper, "sparekey_demo_sandboxes_total", lambda: new_visitor(app), outcome="made")
        == 1
    )
    full = moved(
        scraper,
        "sparekey_demo_sandboxes_total",
        lambda: try_the_demo(Person(app.test_client())),
        outcome="full",
    )
    assert full == 1


def test_when_every_name_drawn_is_taken_nothing_is_made_and_the_visitor_is_told(app, monkeypatch):
    monkeypatch.setattr("security.demo.sandbox_username", lambda: "demo-amber-fox-42")
    first = Person(app.test_client())
    assert try_the_demo(first).location == "/tour/"
    before = snapshot(app)
    second = Person(app.test_client())
    response = try_the_demo(second)
    assert response.location == "/accounts/demo/"
    page = second.client.get(response.location).get_data(as_text=True)
    assert NAMES_TAKEN in page
    assert snapshot(app) == before
