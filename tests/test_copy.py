"""Every sentence a person reads at the edges: 0, 1, 2 and 10 codes left, 0, 1 and 2 failed
attempts, and a session ended from elsewhere. Sentences are compared whole, in order, so a wrong
plural or a stray notice fails here (docs/decisions.md, "What the notes say")."""

from __future__ import annotations

import html as html_module
import re

import pytest
from sqlalchemy import func, select

from extensions import db
from models import EndedSession, UserSession
from security.backup_codes import redeem_backup_code
from tests.helpers import PASSWORD, Person, current_keys, give_codes

NEW_PASSWORD_PAGE = "/accounts/password/new/"
ANOTHER_ADDRESS = "203.0.113.66"


def _text(fragment: str) -> str:
    without_tags = re.sub(r"<[^>]+>", "", fragment)
    return " ".join(html_module.unescape(without_tags).split())


def flashes(page: str) -> list[tuple[str, str]]:
    """The notices at the top of a page, in order, as (class, sentence)."""
    block = re.search(r'<div class="flashes">(.*?)</div>', page, re.S)
    if block is None:
        return []
    return [
        (classes, _text(body))
        for classes, body in re.findall(r'<p class="([^"]+)"[^>]*>(.*?)</p>', block[1], re.S)
    ]


def status_card(page: str) -> list[str]:
    """The home page's security status card: each line a person reads, in order."""
    card = re.search(r'<section class="card status-card".*?</section>', page, re.S)
    if card is None:
        raise AssertionError("no status card on the page")
    lines = re.findall(r"<(?:h2|dt|dd|p|a)\b[^>]*>(.*?)</(?:h2|dt|dd|p|a)>", card[0], re.S)
    return [_text(line) for line in lines]


def spend(app, user_id: int, codes: list[str]) -> None:
    with app.app_context():
        for code in codes:
            redeem_backup_code(db.session, current_keys(), user_id, code)
            db.session.commit()


def stranger(app) -> Person:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ANOTHER_ADDRESS
    return Person(client)


STATUS_TITLE = ["Security status"]


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        (
            0,
            [
                "Two-factor authentication",
                "Backup codes only",
                "Backup codes",
                "10 of 10 codes left",
                "Manage backup codes",
            ],
        ),
        (
            8,
            [
                "Two-factor authentication",
                "Backup codes only",
                "Backup codes",
                "2 of 10 codes left",
                "Only 2 backup codes left. Get new codes before you run out.",
                "Manage backup codes",
            ],
        ),
        (
            9,
            [
                "Two-factor authentication",
                "Backup codes only",
                "Backup codes",
                "1 of 10 codes left",
                "Only 1 backup code left. Get new codes before you run out.",
                "Manage backup codes",
            ],
        ),
        (
            10,
            [
                "Two-factor authentication",
                "Off — all backup codes used",
                "Backup codes",
                "0 of 10 codes left",
                "You have used all 10 backup codes. Get new codes now: until you do, a lost "
                "password locks you out.",
                "Get backup codes",
            ],
        ),
    ],
    ids=["10 left", "2 left", "1 left", "0 left"],
)
def test_the_status_card_at_10_2_1_and_0_codes_left(app, logged_in, user, used, expected):
    codes = give_codes(app, user)
    spend(app, user, codes[:used])
    home = logged_in.client.get("/").get_data(as_text=True)
    assert status_card(home) == STATUS_TITLE + expected
    assert "Only 0" not in home and "1 codes" not in home


def test_the_status_card_without_codes(logged_in):
    assert status_card(logged_in.client.get("/").get_data(as_text=True)) == [
        *STATUS_TITLE,
        "Two-factor authentication",
        "Off — no backup codes yet",
        "Backup codes",
        "None",
        "You have no backup codes. If you lose your password you cannot get back in.",
        "Get backup codes",
    ]


def test_the_status_card_with_an_app_and_no_codes_left(app, logged_in, user, user_with_app):
    codes = give_codes(app, user)
    spend(app, user, codes)
    lines = status_card(logged_in.client.get("/").get_data(as_text=True))
    assert lines[2] == "On — authentication app"
    assert lines[4:] == [
        "0 of 10 codes left",
        "You have used all 10 backup codes. Get new codes now: until you do, a lost password "
        "locks you out.",
        "Get backup codes",
    ]


@pytest.mark.parametrize(
    ("spent_before", "expected"),
    [
        (0, [("alert alert-success", "You used backup code #{n}. 9 codes left.")]),
        (
            7,
            [
                ("alert alert-success", "You used backup code #{n}. 2 codes left."),
                (
                    "alert alert-warning",
                    "Only 2 backup codes left. Get new codes in Settings before you run out.",
                ),
            ],
        ),
        (
            8,
            [
                ("alert alert-success", "You used backup code #{n}. 1 code left."),
                (
                    "alert alert-warning",
                    "Only 1 backup code left. Get new codes in Settings before you run out.",
                ),
            ],
        ),
        (
            9,
            [
                ("alert alert-success", "You used backup code #{n}, your last one."),
                (
                    "alert alert-warning",
                    "You have no backup codes left. Get new codes now in Settings → Security → "
                    "Two-Factor Authentication → Backup Codes, so that a lost password cannot "
                    "lock you out.",
                ),
            ],
        ),
    ],
    ids=["9 left", "2 left", "1 left", "0 left"],
)
def test_the_notices_after_a_backup_code(app, user, spent_before, expected):
    codes = give_codes(app, user)
    spend(app, user, codes[:spent_before])
    person = Person(app.test_client())
    person.start_recovery()
    number = spent_before + 1
    response = person.enter_code(codes[spent_before])
    assert response.location == NEW_PASSWORD_PAGE
    page = person.client.get(NEW_PASSWORD_PAGE).get_data(as_text=True)
    assert flashes(page) == [(kind, text.format(n=number)) for kind, text in expected]


ONE = (
    "There was 1 failed attempt to get into your account since it was last used. If that was "
    "not you, your password and codes are still safe."
)
TWO = (
    "There were 2 failed attempts to get into your account since it was last used. If that was "
    "not you, your password and codes are still safe."
)


@pytest.mark.parametrize(("failures", "expected"), [(0, []), (1, [ONE]), (2, [TWO])])
def test_failed_attempts_from_elsewhere_0_1_and_2(app, user, failures, expected):
    """Someone else's wrong passwords are told at the owner's next log-in, as a small note (a
    hint under the notices, never an alert box bigger than what just happened)."""
    someone = stranger(app)
    for index in range(failures):
        assert someone.login(password=f"guess {index}").status_code == 200
    owner = Person(app.test_client())
    response = owner.login()
    assert response.status_code == 302
    page = owner.client.get(response.location).get_data(as_text=True)
    assert flashes(page) == [("hint flash-note", sentence) for sentence in expected]
    # Told once.
    assert flashes(owner.client.get("/").get_data(as_text=True)) == []


def test_the_owner_s_own_typos_are_not_failed_attempts(app, user, frozen_clock):
    """Two typos in this browser a minute before the right password: no note at all. The
    counter still counted them (the wait is the same for everyone)."""
    person = Person(app.test_client())
    person.login(password="typo one")
    person.login(password="typo two")
    frozen_clock(60)
    response = person.login()
    page = person.client.get(response.location).get_data(as_text=True)
    assert flashes(page) == []
    assert "failed attempt" not in page


def test_a_trusted_browser_hears_of_strangers_failures(app, user, frozen_clock):
    """A browser that signed in before counts its own failures apart; at its next log-in it is
    still told of what others got wrong (and not of its own typo)."""
    owner = Person(app.test_client())
    owner.login()
    owner.logout()
    frozen_clock(60)
    stranger(app).login(password="a stranger's guess")
    owner.login(password="the owner's typo")
    response = owner.login()
    page = owner.client.get(response.location).get_data(as_text=True)
    assert flashes(page) == [("hint flash-note", ONE)]
    frozen_clock(120)
    owner.logout()
    response = owner.login()
    assert flashes(owner.client.get(response.location).get_data(as_text=True)) == []


PASSWORD_CHANGED = (
    "You were logged out because your password changed on another device. Log in with the new "
    "password."
)
CODE_USED = (
    "You were logged out because a backup code was used on another device. If that was not you, "
    "use one of your backup codes to get back in (Forgot password?), then secure your account."
)
ELSEWHERE = (
    "You were logged out from another device (Login activity). Log in again if that was you; if "
    "not, change your password."
)


def test_a_password_change_elsewhere_says_why_once(app, user, frozen_clock):
    laptop, phone = Person(app.test_client()), Person(app.test_client())
    laptop.login()
    phone.login()
    changed = laptop.submit(
        "/settings/security/password/",
        {
            "current_password": PASSWORD,
            "password": "a brand new long password",
            "confirm": "a brand new long password",
        },
    )
    assert changed.status_code == 302, changed.get_data(as_text=True)
    response = phone.client.get("/settings/")
    assert response.status_code == 302
    login_page = phone.client.get(response.location).get_data(as_text=True)
    assert flashes(login_page) == [
        ("alert alert-info", PASSWORD_CHANGED),
        ("alert alert-info", "Log in to see that page."),
    ]
    # Once: the next page says nothing more.
    assert flashes(phone.client.get("/").get_data(as_text=True)) == []
    # The laptop, whose own change it was, is still in and hears nothing of it.
    assert PASSWORD_CHANGED not in laptop.client.get("/").get_data(as_text=True)


def test_a_backup_code_used_elsewhere_says_why(app, user, user_codes):
    phone = Person(app.test_client())
    phone.login()
    thief = stranger(app)
    thief.start_recovery()
    assert thief.enter_code(user_codes[0]).location == NEW_PASSWORD_PAGE
    welcome = phone.client.get("/").get_data(as_text=True)
    assert flashes(welcome) == [("alert alert-info", CODE_USED)]


def test_log_out_other_sessions_says_why(app, user):
    laptop, phone = Person(app.test_client()), Person(app.test_client())
    laptop.login()
    phone.login()
    ended = laptop.submit(
        "/settings/security/sessions/", {"others-password": PASSWORD, "others-submit": "1"}
    )
    assert ended.status_code == 302, ended.get_data(as_text=True)
    assert flashes(phone.client.get("/").get_data(as_text=True)) == [
        ("alert alert-info", ELSEWHERE)
    ]


def test_a_wrong_password_ends_nothing_and_notes_nothing(app, user):
    """Bad input: a wrong current password changes nothing, ends no session and leaves no note;
    the other browser stays signed in and reads no "logged out" sentence."""
    laptop, phone = Person(app.test_client()), Person(app.test_client())
    laptop.login()
    phone.login()
    refused = laptop.submit(
        "/settings/security/password/",
        {
            "current_password": "not the password",
            "password": "a brand new long password",
            "confirm": "a brand new long password",
        },
    )
    assert refused.status_code == 200
    assert "That password is not right" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(EndedSession)) == 0
        assert db.session.scalar(select(func.count()).select_from(UserSession)) == 2
    assert phone.client.get("/settings/").status_code == 200


def test_a_session_that_simply_ended_says_nothing(app, user):
    """Logging out by hand, or a cookie naming no session at all: no "because" sentence."""
    person = Person(app.test_client())
    person.login()
    person.logout()
    assert all(
        "You were logged out because" not in text
        for _, text in flashes(person.client.get("/").get_data(as_text=True))
    )
    with person.client.session_transaction() as cookie:
        cookie["_user_id"] = "a" * 43
    assert flashes(person.client.get("/").get_data(as_text=True)) == []
