"""The guided tour on the server: its place survives log-in, wrong turns are caught, exit works."""

from __future__ import annotations

import re

import pyotp

from tests.helpers import PASSWORD, Person, turn_on_app


def start(person: Person, journey: str):
    return person.submit("/tour/", {"journey": journey}, action="/tour/start/")


def test_get_journey_before_log_in_waits_for_it(app, person, user):
    assert start(person, "get").location == "/accounts/login/"
    page = person.client.get("/accounts/login/").get_data(as_text=True)
    assert "Log in first, or try the demo" in page
    person.login()
    home = person.client.get("/").get_data(as_text=True)
    assert (
        "Step 1 of 11" in home
        and "Tap your profile picture at the bottom right (on a computer" in home
    )
    assert 'class="tab tour-target"' in home


def test_only_this_pages_steps_are_shown(app, person, user):
    person.login()
    start(person, "get")
    settings = person.client.get("/settings/").get_data(as_text=True)
    assert "Step 4 of 11" in settings
    assert "Step 1 of 11" not in settings  # the bottom bar is on every page, its step is not


def test_a_wrong_turn_says_how_to_get_back(app, person, user):
    person.login()
    start(person, "get")
    person.client.get("/settings/security/")
    off = person.client.get("/settings/security/password/").get_data(as_text=True)
    assert "You left the tour's path. Step 5 is on the Security page." in off
    assert 'href="/settings/security/">Back to step 5</a>' in off


def test_use_journey_logs_out_first_and_exit_ends_it(app, person, user):
    person.login()
    assert start(person, "use").location == "/accounts/login/"
    assert person.client.get("/settings/").status_code == 302
    login = person.client.get("/accounts/login/").get_data(as_text=True)
    assert "Step 1 of 6" in login and "Step 2 of 6" in login
    response = person.submit("/accounts/login/", {"next": "/accounts/login/"}, action="/tour/exit/")
    assert response.location == "/accounts/login/"
    assert "Step 1 of 6" not in person.client.get("/accounts/login/").get_data(as_text=True)


def test_use_journey_explains_the_app_step_instead_of_calling_it_a_wrong_turn(
    app, person, user, user_codes
):
    """With an authentication app on, a right code leads to the app's code first: the tour says
    why and offers nothing that would leave the half-finished recovery."""
    secret = turn_on_app(app, user)
    start(person, "use")
    person.start_recovery("alice")
    response = person.enter_code(user_codes[0])
    assert response.location == "/accounts/two-factor/"
    for page in ("/accounts/two-factor/", "/accounts/two-factor/backup-code/"):
        text = person.client.get(page).get_data(as_text=True)
        assert "This account also has an authentication app" in text, page
        assert "You left the tour's path" not in text and "Back to step" not in text
    code = pyotp.TOTP(secret).now()
    response = person.submit("/accounts/two-factor/", {"code": code})
    assert response.location == "/accounts/password/new/"
    page = person.client.get(response.location).get_data(as_text=True)
    assert "Step 6 of 6" in page


def test_an_unknown_journey_goes_back_to_the_choice(person):
    assert start(person, "nope").location == "/tour/"


def test_help_page_is_reachable_from_settings_and_log_in(person, user):
    assert 'href="/help/backup-codes/"' in person.client.get("/accounts/login/").get_data(
        as_text=True
    )
    person.login("alice", PASSWORD)
    assert 'href="/help/backup-codes/"' in person.client.get("/settings/").get_data(as_text=True)
    help_page = person.client.get("/help/backup-codes/").get_data(as_text=True)
    for heading in ("Get your backup codes", "Use a backup code", "Why each code works only once"):
        assert heading in help_page
    assert "/help/screenshots/codes-sheet.png" in help_page


def test_the_help_pages_pictures_are_the_readmes_screenshots(client):
    """Every picture the help page shows is served from docs/screenshots/, and nothing else is."""
    help_page = client.get("/help/backup-codes/").get_data(as_text=True)
    names = re.findall(r'src="/help/screenshots/([a-z-]+\.png)"', help_page)
    assert len(names) == 4
    for name in names:
        with client.get(f"/help/screenshots/{name}") as response:
            assert response.status_code == 200 and response.mimetype == "image/png"
            assert response.data.startswith(b"\x89PNG")
            assert "no-store" not in response.headers.get("Cache-Control", "")
    for other in ("../../README.md", "..%2F..%2Fconfig.py", "decisions.md", "nothing.png"):
        assert client.get(f"/help/screenshots/{other}").status_code == 404
