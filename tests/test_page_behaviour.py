"""Behaviour that pages carry for the browser: the app set-up on a phone, pending buttons, times
in UTC for app.js to localise, events in the order they happened, and /robots.txt."""

from __future__ import annotations

import html as html_module
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

import clock
from extensions import db
from models import SecurityEvent
from security import events
from tests.helpers import T0

APP_STATUS = "/settings/security/two-factor/app/"
APP_SETUP = "/settings/security/two-factor/app/setup/"


def test_app_set_up_offers_the_otpauth_link_copy_key_and_the_qr_code(logged_in):
    response = logged_in.submit(APP_STATUS, {"start-submit": "1"}, action=APP_SETUP)
    assert response.status_code == 302
    page = logged_in.client.get(APP_SETUP).get_data(as_text=True)
    link = re.search(
        r'<a class="[^"]*" href="([^"]+)" data-otpauth>Open in authenticator app</a>', page
    )
    assert link is not None
    uri = urlsplit(html_module.unescape(link[1]))
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    key = re.search(r'class="setup-key"[^>]*>([A-Z2-7 ]+)<', page)[1].replace(" ", "")
    # The link carries the key shown on the page (and drawn in the QR code).
    assert parse_qs(uri.query)["secret"] == [key]
    assert parse_qs(uri.query)["issuer"] == ["Sparekey"]
    # Copy key needs JavaScript: hidden until app.js shows it; the key stays on the page.
    assert re.search(r'<button[^>]*data-action="copy-key"[^>]*hidden>Copy key</button>', page)
    assert 'role="img" aria-label="QR code for your authentication app"' in page
    assert "<svg" in page


def test_app_set_up_without_a_set_up_under_way_shows_no_key(logged_in):
    """Bad input: the set-up page before "Set up authentication app" was pressed goes back to
    the app page, with no key and no link."""
    response = logged_in.client.get(APP_SETUP)
    assert response.status_code == 302 and response.location == APP_STATUS
    assert "otpauth" not in logged_in.client.get(APP_STATUS).get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "button"),
    [
        ("/settings/security/two-factor/backup-codes/confirm/", "Confirm"),
        ("/settings/security/password/", "Change password"),
    ],
)
def test_slow_forms_say_what_they_are_doing(logged_in, path, button):
    page = logged_in.client.get(path).get_data(as_text=True)
    assert re.search(
        rf'<button[^>]*type="submit"[^>]*data-pending="Checking…"[^>]*>{button}<', page
    )


def test_the_recovery_form_says_what_it_is_doing(person, user):
    person.start_recovery()
    page = person.client.get("/accounts/password/reset/backup-code/").get_data(as_text=True)
    assert re.search(r'<button[^>]*data-pending="Checking…"[^>]*>Submit<', page)


def test_times_are_utc_in_a_time_element(frozen_clock, app, logged_in, user):
    """The server writes UTC (text and title) and the instant for app.js to localise."""
    page = logged_in.client.get("/settings/security/events/").get_data(as_text=True)
    stamp = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = T0.strftime("%-d %b %Y, %H:%M UTC")
    assert f'<time datetime="{stamp}" title="{text}" data-local-time>{text}</time>' in page


def test_events_of_the_same_second_are_listed_in_the_order_they_happened(app, logged_in, user):
    with app.app_context():
        when = clock.now() + timedelta(days=1)
        for kind in (events.CODES_GENERATED, events.CODES_SAVED, events.CODES_IN_USE):
            db.session.add(SecurityEvent(user_id=user, kind=kind, created_at=when))
        db.session.commit()
    page = logged_in.client.get("/settings/security/events/").get_data(as_text=True)
    shown = [
        html_module.unescape(text)
        for text in re.findall(r'<span class="event-what">([^<(]+)', page)
    ]
    newest_three = [text.strip() for text in shown[:3]]
    assert newest_three == [
        events.DESCRIPTIONS[events.CODES_IN_USE],
        events.DESCRIPTIONS[events.CODES_SAVED],
        events.DESCRIPTIONS[events.CODES_GENERATED],
    ]


def test_robots_txt_is_a_robots_file(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True).splitlines() == [
        "User-agent: *",
        "Allow: /",
        "Disallow: /dev/",
        "Disallow: /metrics",
    ]
