"""What issue 17 changed to make a signed-in page cheaper, held to doing exactly what it did
before: the session lookup sent by the driver gives the objects the ORM would have loaded, the
cookie holds only the session token, the Backup Codes page reads what it shows in fewer
statements, and the template helpers write what the templates wrote.
"""

from __future__ import annotations

import re

import pytest
from flask import render_template_string, request, url_for
from jinja2 import Undefined
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from blueprints.browser import _signed_csrf_token
from blueprints.context import app_context_of
from blueprints.tour.journeys import html_attributes, target
from extensions import db
from models import User, UserSession
from security.sessions import load_session, token_digest
from tools.inprocess import Person
from tools.live import csrf_from

PAGE = "/settings/security/two-factor/backup-codes/"


def statements_of(app, client, path: str, status: int = 200) -> list[str]:
    """The SQL statements one GET of `path` sends (after a first GET that warms caches), which
    answers `status`."""
    assert client.get(path).status_code == status
    with app.app_context():
        engine = db.engine
    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == status
    return sent


def session_token(person) -> str:
    with person.client.session_transaction() as cookie:
        return cookie["_user_id"]


def test_the_lookup_gives_what_the_orm_would_have_loaded(app, logged_in):
    """Every column of the row and its account equal to a plain ORM read of the same rows, both
    objects in the request's session and unchanged, and the row's account is the account."""
    token = session_token(logged_in)
    with app.app_context():
        row = load_session(db.session, token, app_context_of(app).timeouts)
        assert row is not None
        user = row.user
        assert row in db.session and user in db.session
        assert not db.session.dirty and not db.session.new
        assert inspect(row).persistent and inspect(user).persistent
        assert not inspect(row).expired_attributes and not inspect(user).expired_attributes
        with Session(db.engine) as fresh:
            orm_row = fresh.get(UserSession, token_digest(token))
            orm_user = fresh.get(User, user.id)
            for model, ours, theirs in ((UserSession, row, orm_row), (User, user, orm_user)):
                for attribute in inspect(model).column_attrs:
                    key = attribute.key
                    assert getattr(ours, key) == getattr(theirs, key), key
                    assert type(getattr(ours, key)) is type(getattr(theirs, key)), key
        # The same object the identity map hands out for its key: no second copy.
        assert db.session.get(User, user.id) is user


def test_a_change_to_the_looked_up_account_is_saved(app, logged_in):
    """The objects are the session's own: a use case that changes the account and commits
    writes the change (no write happens without one)."""
    token = session_token(logged_in)
    with app.app_context():
        row = load_session(db.session, token, app_context_of(app).timeouts)
        row.user.bio = "written through the looked-up account"
        db.session.commit()
        user_id = row.user.id
    with app.app_context():
        assert db.session.get(User, user_id).bio == "written through the looked-up account"


def test_a_driver_error_is_sqlalchemys_and_names_no_parameter(app):
    """What the engine would raise, without the bound value in its text (hide_parameters)."""
    from sqlalchemy.exc import DBAPIError

    from security.sessions import _send

    with app.app_context():
        connection = db.session.connection()
        marker = {"digest": "a-value-no-log-may-show"}
        positional = connection.dialect.positional
        sql = (
            "SELECT no_such_column FROM user_sessions WHERE id = ?"
            if positional
            else "SELECT no_such_column FROM user_sessions WHERE id = %(digest)s"
        )
        parameters = tuple(marker.values()) if positional else marker
        with pytest.raises(DBAPIError) as raised:
            _send(connection, [(sql, parameters)], {})
        assert "no_such_column" in str(raised.value)
        assert "a-value-no-log-may-show" not in str(raised.value)
        assert not raised.value.connection_invalidated
        db.session.rollback()


def test_an_unknown_token_finds_nothing_and_changes_nothing(app, logged_in):
    with app.app_context():
        before = db.session.scalars(select(UserSession.id)).all()
        assert load_session(db.session, "not-a-token", app_context_of(app).timeouts) is None
        assert db.session.scalars(select(UserSession.id)).all() == before


def test_a_session_already_holding_objects_uses_the_orm_query(app, logged_in, user):
    """Never the case in a request, but a caller that loaded the account first gets the same
    object back, not a second copy that the session would refuse."""
    token = session_token(logged_in)
    with app.app_context():
        loaded_first = db.session.get(User, user)
        row = load_session(db.session, token, app_context_of(app).timeouts)
        assert row is not None and row.user is loaded_first


def test_a_signed_in_page_sends_the_lookup_once(app, logged_in):
    """One statement for the bare signed-in page, whatever the database (the round trip itself
    is counted at the driver in test_round_trips.py, PostgreSQL only)."""
    sent = statements_of(app, logged_in.client, "/settings/")
    assert len(sent) == 1, sent
    assert "FROM user_sessions JOIN users" in sent[0]


def test_a_path_with_no_page_does_not_look_the_account_up(app, logged_in):
    """A 404 needs no account: signed in, it sends no statement at all (the error page must
    not wait on the database), and the next page still finds the session."""
    assert statements_of(app, logged_in.client, "/settings/no-such-page/", 404) == []
    assert logged_in.client.get("/settings/").status_code == 200


def test_the_cookie_holds_only_the_session_token(logged_in):
    """No address-and-browser digest and no "fresh" flag (Flask-Login's protection is off)."""
    with logged_in.client.session_transaction() as cookie:
        assert set(cookie.keys()) <= {"_user_id", "csrf_token", "tour"}, dict(cookie)
        assert "_user_id" in cookie


def test_a_cookie_from_before_the_change_still_works(app, logged_in):
    """A browser signed in before the change carries `_id` and `_fresh`: it stays signed in."""
    with logged_in.client.session_transaction() as cookie:
        cookie["_id"] = "a" * 128
        cookie["_fresh"] = True
    page = logged_in.client.get("/settings/")
    assert page.status_code == 200 and "alice" in page.get_data(as_text=True)


def test_a_new_secret_key_ends_the_cookie_and_a_fallback_keeps_it(app, logged_in):
    """The cookie's serializer is made once per key: a rotated key is used at once, and the
    old key in SECRET_KEY_FALLBACKS still reads cookies signed with it."""
    old_key = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "a new key for this test, long enough to be a real one"
    app.secret_key = app.config["SECRET_KEY"]
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]
    page = logged_in.client.get("/settings/")
    assert page.status_code == 200 and "alice" in page.get_data(as_text=True)
    # Another new key and no fallback: whatever the cookie was signed with is no longer read.
    app.config["SECRET_KEY"] = app.secret_key = "yet another key for this test, long enough too"
    app.config["SECRET_KEY_FALLBACKS"] = []
    page = logged_in.client.get("/settings/")
    assert page.status_code == 302 and "/accounts/login/" in page.headers["Location"]


def read_with_the_lookup(app) -> int:
    """The statements the session lookup and a page's one read ahead take: one on PostgreSQL
    (the read is folded into the lookup), two elsewhere."""
    with app.app_context():
        return 1 if db.engine.dialect.name == "postgresql" else 2


def test_backup_codes_page_without_a_sheet_is_one_statement_after_the_lookup(
    app, logged_in, user_codes
):
    sent = statements_of(app, logged_in.client, PAGE)
    assert len(sent) == read_with_the_lookup(app), sent
    assert "code_sheets" in sent[-1] and "backup_code_sets" in sent[-1]
    body = logged_in.client.get(PAGE).get_data(as_text=True)
    assert "<strong>10 of 10</strong> codes left" in body
    assert "New codes waiting" not in body


def test_backup_codes_page_reads_the_sheet_when_one_waits(app, logged_in, user_codes):
    """A replacement sheet waits for this session: the page shows it (one more statement);
    another browser of the account sees the set in use and no sheet."""
    assert len(logged_in.start_new_codes()) == 10
    sent = statements_of(app, logged_in.client, PAGE)
    assert len(sent) == read_with_the_lookup(app) + 1, sent
    body = logged_in.client.get(PAGE).get_data(as_text=True)
    assert "New codes waiting" in body and "<strong>10 of 10</strong> codes left" in body
    other = Person(app.test_client())
    assert other.login().status_code == 302
    elsewhere = other.client.get(PAGE).get_data(as_text=True)
    assert "New codes waiting" not in elsewhere and "<strong>10 of 10</strong>" in elsewhere


def test_backup_codes_page_for_an_account_without_codes(app, logged_in):
    sent = statements_of(app, logged_in.client, PAGE)
    # No set row: whether a sheet waits is then asked on its own.
    assert len(sent) == read_with_the_lookup(app) + 1, sent
    assert "Get Backup Codes" in logged_in.client.get(PAGE).get_data(as_text=True)


def test_static_url_is_url_for_and_follows_the_mount_point(app):
    with app.test_request_context("/"):
        static_url = app.jinja_env.globals["static_url"]
        assert static_url("css/app.css") == url_for("static", filename="css/app.css")
    with app.test_request_context("/", base_url="http://localhost/sparekey/"):
        assert request.script_root == "/sparekey"
        assert static_url("css/app.css") == "/sparekey/static/css/app.css"
    with app.test_request_context("/"):
        assert static_url("css/app.css") == "/static/css/app.css"


def test_templates_url_for_is_flasks_and_follows_the_mount_point(app):
    """Templates' `url_for` builds a link with no values once per mount point; anything else is
    Flask's own call."""
    page_url_for = app.jinja_env.globals["url_for"]
    with app.test_request_context("/"):
        for endpoint in ("profile.home", "settings.index", "auth.logout", "tour.exit_tour"):
            assert page_url_for(endpoint) == url_for(endpoint)
        assert page_url_for("profile.profile", username="a b") == "/a%20b/"
        assert page_url_for("settings.index", _external=True) == "http://localhost/settings/"
    with app.test_request_context("/", base_url="http://localhost/sparekey/"):
        assert page_url_for("settings.index") == "/sparekey/settings/"
        assert page_url_for("profile.profile", username="al") == "/sparekey/al/"
    with app.test_request_context("/"):
        assert page_url_for("settings.index") == "/settings/"
    with app.app_context(), pytest.raises(RuntimeError, match="SERVER_NAME"):
        page_url_for("settings.index")  # no request: Flask's own call, which needs SERVER_NAME


@pytest.mark.parametrize(
    ("values", "written"),
    [
        ({"aria_label": "Options", "role": "button"}, ' aria-label="Options" role="button"'),
        ({"novalidate": True, "hidden": False, "title": None}, " novalidate"),
        ({"href": '/x?a=1&b="2"<'}, ' href="/x?a=1&amp;b=&#34;2&#34;&lt;"'),
        ({"aria_current": Undefined()}, ""),
        ({}, ""),
    ],
)
def test_html_attributes(values, written):
    assert str(html_attributes(values)) == written


@pytest.mark.parametrize(
    ("source", "written"),
    [
        (
            '{% call target("get", "a", "button", href="/x?a=1&b") %}'
            'Get <b>{{ "<" }}</b>{% endcall %}',
            '<a class="button" id="tour-get" href="/x?a=1&amp;b">Get <b>&lt;</b></a>',
        ),
        # name and tag are the tour's; a keyword of the same name is the element's attribute
        (
            '{% call target("forgot", "button", "link", callout=false, type="submit", name="f",'
            ' value="1") %}Forgot?{% endcall %}',
            '<button class="link" id="tour-forgot" type="submit" name="f" value="1">'
            "Forgot?</button>",
        ),
        ('{% call target(none, "p") %}x{% endcall %}', '<p class="">x</p>'),
        (
            "{% call target('a\"b', 'span', 'c\"d', hidden=true, title=none) %}{% endcall %}",
            '<span class="c&#34;d" id="tour-a&#34;b" hidden></span>',
        ),
    ],
)
def test_tour_target_element(app, source, written):
    """`target` (a function, not a macro: blueprints/tour/journeys.py) writes the element with
    everything escaped; with no tour step on the page, no outline and no callout."""
    with app.test_request_context("/"):
        assert render_template_string(source) == written


def test_every_macro_is_a_template_global_and_none_is_imported(app):
    """The macro files' macros are globals; a page that imported one would pay for the import
    on every render again."""
    from pathlib import Path

    from jinja2.runtime import Macro

    for name in (
        "field",
        "form_errors",
        "confirm_fields",
        "back",
        "settings_row",
        "settings_steps",
        "leaf_side",
    ):
        assert isinstance(app.jinja_env.globals.get(name), Macro), name
    assert app.jinja_env.globals["target"] is target  # the tour's element: a function
    assert not isinstance(app.jinja_env.globals["avatar"], Macro)  # the picture: a function
    templates = Path(app.root_path) / "templates"
    for page in templates.rglob("*.html"):
        if page.parent.name == "macros":
            continue
        assert '{% from "macros/' not in page.read_text(), page


def test_the_avatar_is_the_picture_or_the_escaped_initial(app):
    """`avatar` (a function, once a macro): the account's image, or its initial on one of six
    colours, the initial escaped like any other text of the page."""
    from types import SimpleNamespace

    from markupsafe import Markup

    avatar = app.jinja_env.globals["avatar"]
    pictured = SimpleNamespace(id=3, avatar="demo.svg", display_name="Dana", username="dana")
    named = SimpleNamespace(id=8, avatar=None, display_name="<b>ob", username="bob")
    unnamed = SimpleNamespace(id=13, avatar=None, display_name="", username="zed")
    with app.test_request_context("/"):
        shown = [avatar(pictured, "small"), avatar(named), avatar(unnamed, "large")]
    assert all(isinstance(html, Markup) for html in shown)
    assert shown == [
        '<img class="avatar avatar-small" src="/static/img/avatars/demo.svg" alt=""'
        ' aria-hidden="true">',
        '<span class="avatar avatar-large avatar-hue-2" aria-hidden="true"'
        ' data-initial="&lt;"></span>',
        '<span class="avatar avatar-large avatar-hue-1" aria-hidden="true"'
        ' data-initial="Z"></span>',
    ]


def test_a_macro_name_taken_twice_stops_the_app(app):
    from app import install_macros

    with pytest.raises(RuntimeError, match="already taken"):
        install_macros(app)


def test_csrf_token_is_signed_once_a_minute_and_still_expires(app, user, monkeypatch):
    """A page's CSRF token is Flask-WTF's, signed again at most once a minute per browser
    (blueprints/browser.py:csrf_token); Flask-WTF's check takes it, and still refuses one older
    than WTF_CSRF_TIME_LIMIT."""
    import time

    person = Person(app.test_client())
    person.login()
    start = time.time()
    clock = [start]
    monkeypatch.setattr(time, "time", lambda: clock[0])

    def token() -> str:
        return csrf_from(person.client.get("/settings/").get_data(as_text=True))

    first = token()  # a new raw token in the session: Flask-WTF makes and signs it
    assert token() == first  # the same minute: the same token ...
    hits = _signed_csrf_token.cache_info().hits
    assert token() == first
    assert _signed_csrf_token.cache_info().hits == hits + 1  # ... not signed again
    clock[0] = start + 60
    second = token()
    assert second != first
    assert person.client.post("/tour/exit/", data={"csrf_token": first}).status_code == 302
    clock[0] = start + app.config["WTF_CSRF_TIME_LIMIT"] + 1
    refused = person.client.post("/tour/exit/", data={"csrf_token": first})
    assert refused.status_code == 400
    assert "expired" in refused.get_data(as_text=True).lower()
    assert person.client.post("/tour/exit/", data={"csrf_token": second}).status_code == 302


def _bottom_bar(html: str) -> str:
    return re.search(r'<nav class="bottom-bar".*?</nav>', html, re.S).group(0)


def test_bottom_bar_is_each_accounts_own_and_follows_changes(app, user, other_user):
    """The bottom bar is rendered once per page and account (app.py:bottom_bar): two accounts
    on the same page each get their own; a new picture or name shows on the next page; and
    while the tour points at the profile picture, the bar shows its callout."""
    alice, bob = Person(app.test_client()), Person(app.test_client())
    alice.login()
    bob.login("bob", "bob's own long password")
    for _ in range(2):  # the second time from the cache
        alice_bar = _bottom_bar(alice.client.get("/settings/").get_data(as_text=True))
        bob_bar = _bottom_bar(bob.client.get("/settings/").get_data(as_text=True))
        assert 'href="/alice/"' in alice_bar and 'data-initial="A"' in alice_bar
        assert 'href="/bob/"' in bob_bar and 'data-initial="B"' in bob_bar
        assert 'aria-current="page"' in alice_bar  # Settings, on a settings page
    on_home = _bottom_bar(alice.client.get("/").get_data(as_text=True))
    assert on_home != alice_bar  # another page: Home is the current one
    with app.app_context():
        account = db.session.get(User, user)
        account.avatar, account.display_name = "demo.svg", "Zed"
        db.session.commit()
    changed = _bottom_bar(alice.client.get("/settings/").get_data(as_text=True))
    assert "img/avatars/demo.svg" in changed and "data-initial" not in changed
    # The tour's first journey points at the profile picture on Home: its callout is in the bar.
    token = csrf_from(alice.client.get("/tour/").get_data(as_text=True))
    alice.client.post("/tour/start/", data={"journey": "get", "csrf_token": token})
    toured = _bottom_bar(alice.client.get("/").get_data(as_text=True))
    assert 'class="tab tour-target" id="tour-profile-tab"' in toured
    assert "tour-callout" in toured


# --- reads ahead: a page's first read sent with the session lookup (security/read_ahead.py) -----


def _use_codes(app, user_id: int, numbers: tuple[int, ...]) -> None:
    from sqlalchemy import update

    from clock import now
    from models import BackupCode

    with app.app_context():
        db.session.execute(
            update(BackupCode)
            .where(BackupCode.user_id == user_id, BackupCode.number.in_(numbers))
            .values(used_at=now())
        )
        db.session.commit()


@pytest.mark.parametrize("sheet_waits", [False, True])
def test_rows_read_ahead_are_what_the_pages_own_read_gives(
    app, logged_in, user, user_codes, sheet_waits
):
    """Same rows, same values, same types, in the same order, as the page's own statement; with
    used codes and with a sheet waiting or not."""
    from security.backup_codes import _CODE_STATUS_AND_SHEET, CODE_STATUS_AND_SHEET
    from security.read_ahead import take

    _use_codes(app, user, (7, 3))
    if sheet_waits:
        assert len(logged_in.start_new_codes()) == 10
    token = session_token(logged_in)
    with app.app_context():
        timeouts = app_context_of(app).timeouts
        row = load_session(db.session, token, timeouts, (CODE_STATUS_AND_SHEET,))
        ahead = take(db.session, CODE_STATUS_AND_SHEET, row.user_id)
        own = db.session.execute(_CODE_STATUS_AND_SHEET, {"user_id": user}).all()
    assert ahead is not None and len(ahead) == len(own) == 2
    assert [n.number for n in ahead] == [3, 7] and bool(ahead[0].sheet) is sheet_waits
    for mine, theirs in zip(ahead, own, strict=True):
        assert tuple(mine) == tuple(theirs)
        assert [type(v) for v in mine] == [type(v) for v in theirs]


@pytest.mark.parametrize("has_codes", [False, True])
def test_rows_read_ahead_are_only_the_sessions_accounts(
    app, logged_in, user, other_user, has_codes
):
    """Another account's codes and waiting sheet say nothing about this one's: with codes and no
    sheet, the row read ahead says no sheet; with no codes, no row is read ahead. Each as the
    account's own read gives it."""
    from security.backup_codes import _CODE_STATUS_AND_SHEET, CODE_STATUS_AND_SHEET
    from security.read_ahead import take
    from tests.helpers import give_codes

    if has_codes:
        give_codes(app, user)
    bob = Person(app.test_client())
    assert bob.login("bob", "bob's own long password").status_code == 302
    assert len(bob.start_new_codes("bob's own long password")) == 10  # a sheet waits for bob
    token = session_token(logged_in)
    with app.app_context():
        timeouts = app_context_of(app).timeouts
        row = load_session(db.session, token, timeouts, (CODE_STATUS_AND_SHEET,))
        assert row is not None and row.user_id == user
        ahead = take(db.session, CODE_STATUS_AND_SHEET, user)
        own = db.session.execute(_CODE_STATUS_AND_SHEET, {"user_id": user}).all()
        theirs = db.session.execute(_CODE_STATUS_AND_SHEET, {"user_id": other_user}).all()
    assert ahead == own
    assert len(own) == (1 if has_codes else 0)
    if has_codes:
        assert own[0].sheet is False or own[0].sheet == 0
    assert theirs and theirs[0].sheet


def test_rows_read_ahead_are_for_the_sessions_account_and_taken_once(
    app, logged_in, user, user_codes, other_user
):
    from security.backup_codes import CODE_STATUS, code_status
    from security.read_ahead import take

    token = session_token(logged_in)
    with app.app_context():
        timeouts = app_context_of(app).timeouts
        load_session(db.session, token, timeouts, (CODE_STATUS,))
        assert take(db.session, CODE_STATUS, other_user) is None  # another account: dropped
        load_session(db.session, token, timeouts, (CODE_STATUS,))
        assert take(db.session, CODE_STATUS, user) is not None
        assert take(db.session, CODE_STATUS, user) is None  # taken once
        assert code_status(db.session, user).public_id  # the page then reads for itself


def test_a_write_before_the_page_reads_drops_what_was_read_ahead(app, logged_in, user, user_codes):
    """Anything flushed or sent meanwhile that is not a SELECT may have changed what the rows
    say: the page reads afresh and sees the change."""
    from sqlalchemy import update

    from clock import now
    from models import BackupCode
    from security.backup_codes import CODE_STATUS, code_status
    from security.read_ahead import take

    token = session_token(logged_in)
    timeouts = app_context_of(app).timeouts
    with app.app_context():
        assert load_session(db.session, token, timeouts, (CODE_STATUS,)) is not None
        db.session.execute(
            update(BackupCode)
            .where(BackupCode.user_id == user, BackupCode.number == 1)
            .values(used_at=now())
        )
        assert take(db.session, CODE_STATUS, user) is None
        assert code_status(db.session, user).used_numbers == [1]
        db.session.rollback()
    with app.app_context():
        row = load_session(db.session, token, timeouts, (CODE_STATUS,))
        assert row is not None
        row.user.bio = "a write"
        db.session.flush()
        assert take(db.session, CODE_STATUS, user) is None
        db.session.rollback()
    with app.app_context():  # nothing written: the rows are there to take
        assert load_session(db.session, token, timeouts, (CODE_STATUS,)) is not None
        assert take(db.session, CODE_STATUS, user) is not None


def test_an_expired_session_reads_nothing_ahead(app, frozen_clock, logged_in, user, user_codes):
    from security.backup_codes import CODE_STATUS
    from security.read_ahead import take

    token = session_token(logged_in)
    frozen_clock(app.config["SESSION_IDLE_TIMEOUT_SECONDS"] + 1)
    with app.app_context():
        timeouts = app_context_of(app).timeouts
        assert load_session(db.session, token, timeouts, (CODE_STATUS,)) is None
        assert take(db.session, CODE_STATUS, user) is None


@pytest.mark.parametrize(("method", "read_ahead"), [("GET", True), ("HEAD", True), ("POST", False)])
def test_only_a_get_reads_ahead(app, method, read_ahead):
    """A POST may change what it reads (a new sheet, a used code): it reads for itself."""
    from app import _reads_ahead
    from security.backup_codes import CODE_STATUS

    with app.test_request_context(
        "/settings/security/two-factor/backup-codes/check/", method=method
    ):
        assert _reads_ahead() == ((CODE_STATUS,) if read_ahead else ())
    with app.test_request_context("/settings/", method=method):
        assert _reads_ahead() == ()


def test_pages_that_read_ahead_send_no_statement_of_their_own(app, logged_in, user_codes):
    """Home and Two-Factor: the lookup and the read (in it, or beside it), nothing after (the
    round trip itself is counted in test_round_trips.py, PostgreSQL only)."""
    for page in ("/", "/settings/security/two-factor/"):
        sent = statements_of(app, logged_in.client, page)
        assert len(sent) == read_with_the_lookup(app), (page, sent)
        assert "backup_code_sets" in sent[-1], (page, sent)


# --- the cookie read once per browser, Flask-Login's unused digest ------------------------------


def cookie_value(app, person) -> str:
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = person.client.get_cookie(name)
    assert cookie is not None
    return cookie.value


def test_a_cookie_read_before_is_not_verified_again(app, logged_in, monkeypatch):
    """The same cookie bytes on the next page: the session is the same, its signature and JSON
    are not read again."""
    for _ in range(2):  # the first page puts a CSRF token in the cookie
        assert logged_in.client.get("/settings/").status_code == 200
    serializer = app.session_interface.get_signing_serializer(app)
    reads = []
    real_loads = serializer.loads
    monkeypatch.setattr(serializer, "loads", lambda *a, **k: reads.append(1) or real_loads(*a, **k))
    page = logged_in.client.get("/settings/")
    assert page.status_code == 200 and "alice" in page.get_data(as_text=True)
    assert reads == []


def test_a_changed_cookie_is_verified_and_refused(app, logged_in):
    """After the real cookie was read (and remembered), the same cookie with one character of
    its signature changed is checked, refused, and changes nothing: the browser is signed out
    and the session row is still there."""
    assert logged_in.client.get("/settings/").status_code == 200
    value = cookie_value(app, logged_in)
    # Not the last character: its low bits are base64 padding, which decoding ignores.
    changed = "A" if value[-5] != "A" else "B"
    with app.app_context():
        rows_before = db.session.scalars(select(UserSession.id)).all()
    forged = value[:-5] + changed + value[-4:]
    logged_in.client.set_cookie(app.config["SESSION_COOKIE_NAME"], forged)
    page = logged_in.client.get("/settings/")
    assert page.status_code == 302 and "/accounts/login/" in page.headers["Location"]
    with app.app_context():
        assert db.session.scalars(select(UserSession.id)).all() == rows_before


def test_a_remembered_cookie_still_expires(app, logged_in, monkeypatch):
    """Remembered or not, a cookie older than PERMANENT_SESSION_LIFETIME is not read."""
    import time
    from datetime import timedelta

    # The first page puts a CSRF token in the cookie; the second reads (and remembers) it.
    for _ in range(2):
        assert logged_in.client.get("/settings/").status_code == 200
    assert cookie_value(app, logged_in) in app.session_interface._serializer(app)[1]
    app.permanent_session_lifetime = timedelta(minutes=5)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 301)
    page = logged_in.client.get("/settings/")
    assert page.status_code == 302 and "/accounts/login/" in page.headers["Location"]


def test_a_cookie_holding_a_list_is_read_afresh_each_time(app):
    """Flashed messages are a list a page changes in place: such a cookie is never shared
    between requests (each gets its own list), and it is not remembered."""
    interface = app.session_interface
    with app.test_request_context("/"):
        cookie = app.session_interface.session_class({"_flashes": [["info", "Hello"]]})
        serializer = interface.get_signing_serializer(app)
        value = serializer.dumps(dict(cookie))
    header = {"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={value}"}
    with app.test_request_context("/", headers=header) as context:
        first = interface.open_session(app, context.request)
    first["_flashes"].append(["info", "changed in place"])
    with app.test_request_context("/", headers=header) as context:
        second = interface.open_session(app, context.request)
    assert second["_flashes"] == [["info", "Hello"]]
    assert value not in interface._serializer(app)[1]


def test_the_cookies_remembered_are_bounded(app, monkeypatch):
    import blueprints.browser as browser

    monkeypatch.setattr(browser, "READ_COOKIES", 3)
    interface = app.session_interface
    serializer, read = interface._serializer(app)
    read.clear()
    for number in range(6):
        value = serializer.dumps({"_user_id": f"token {number}"})
        header = {"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={value}"}
        with app.test_request_context("/", headers=header) as context:
            assert interface.open_session(app, context.request)["_user_id"] == f"token {number}"
    assert len(read) == 3


def test_no_address_and_browser_digest_while_session_protection_is_off(app, logged_in, monkeypatch):
    """Flask-Login hashed the address and user agent on every request even with its protection
    off; now only when it is on."""
    from extensions import login_manager

    made = []
    real = login_manager._session_identifier_generator
    monkeypatch.setattr(
        login_manager, "_session_identifier_generator", lambda: made.append(1) or real()
    )
    page = logged_in.client.get("/settings/")
    assert page.status_code == 200 and "alice" in page.get_data(as_text=True)
    assert made == []
    app.config["SESSION_PROTECTION"] = "basic"
    assert logged_in.client.get("/settings/").status_code == 200
    assert made != []


# --- the lookup's own connection -------------------------------------------------------------


@pytest.mark.parametrize("page", ["/alice/", "/", PAGE])
def test_a_page_that_reads_nothing_more_holds_no_connection_while_it_renders(
    app, logged_in, user_codes, page
):
    """The lookup's connection goes back to the pool as soon as the row is read: a page whose
    reads all went with it (Profile, and the pages that read ahead) renders holding none."""
    from flask import before_render_template

    held: list[int] = []

    def count(sender, template, context, **extra):
        held.append(db.engine.pool.checkedout())

    with before_render_template.connected_to(count, app):
        response = logged_in.client.get(page)
    assert response.status_code == 200, page
    assert held and held[0] == 0, (page, held)


def test_a_lookup_in_a_session_that_has_begun_is_made_in_its_transaction(app, user):
    """Outside a request, a session that has begun (here: a row written, not committed) has
    its lookup sent on its own connection, so it sees what the transaction wrote."""
    from sqlalchemy import insert

    from clock import now

    token = "a token written in this transaction and not committed"
    with app.app_context():
        current = now()
        db.session.execute(
            insert(UserSession).values(
                id=token_digest(token),
                public_id="0123456789abcdef",
                user_id=user,
                created_at=current,
                last_seen_at=current,
                ip="",
                user_agent="",
                must_change_password=False,
            )
        )
        assert db.session().in_transaction() and not db.session.identity_map
        row = load_session(db.session, token, app_context_of(app).timeouts)
        assert row is not None and row.user_id == user
        db.session.rollback()
    with app.app_context():
        assert load_session(db.session, token, app_context_of(app).timeouts) is None


@pytest.mark.parametrize("shape", ["limited", "distinct", "unordered"])
def test_any_read_ahead_gives_the_rows_of_its_own_read(app, logged_in, user, user_codes, shape):
    """Whatever the read (a LIMIT that picks some rows in its order, DISTINCT, no order at
    all), what the lookup reads ahead is what the read gives on its own; on PostgreSQL a
    DISTINCT read goes beside the lookup instead of into it."""
    from sqlalchemy import bindparam

    from models import BackupCode
    from security.read_ahead import ReadAhead, take

    _use_codes(app, user, (2, 5, 9))

    def limited(account):
        chosen = select(BackupCode.number, BackupCode.used_at).where(BackupCode.user_id == account)
        return chosen.order_by(BackupCode.number.desc()).limit(4)

    def distinct(account):
        used = select(BackupCode.used_at.is_not(None).label("used"))
        return used.where(BackupCode.user_id == account).distinct()

    def unordered(account):
        return select(BackupCode.number).where(BackupCode.user_id == account)

    read = ReadAhead(
        shape, {"limited": limited, "distinct": distinct, "unordered": unordered}[shape]
    )
    token = session_token(logged_in)
    with app.app_context():
        timeouts = app_context_of(app).timeouts
        assert load_session(db.session, token, timeouts, (read,)) is not None
        ahead = take(db.session, read, user)
        own = db.session.execute(read.statement(bindparam("user_id")), {"user_id": user}).all()
    assert ahead is not None and len(own) > 1
    if shape == "limited":
        assert [tuple(row) for row in ahead] == [tuple(row) for row in own]
        assert [row.number for row in own] == [10, 9, 8, 7]
    else:
        assert sorted(tuple(row) for row in ahead) == sorted(tuple(row) for row in own)
