"""What app.js adds, in a real browser: Copy key and the otpauth link on the app set-up, the
pending state of a slow form, and times in the browser's time zone, relative, UTC in the title."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e import steps
from tests.e2e.steps import expect

pytestmark = pytest.mark.e2e


def open_app_set_up(page, username: str) -> None:
    page.goto("/settings/security/two-factor/app/")
    page.get_by_role("button", name="Set up authentication app").click()
    expect(page.get_by_role("heading", name="Set up authentication app")).to_be_visible()


def test_app_set_up_on_a_phone_opens_the_app_or_copies_the_key(browser_page):
    page, username = browser_page, steps.new_username("phone")
    steps.sign_up(page, username)
    open_app_set_up(page, username)
    link = page.get_by_role("link", name="Open in authenticator app")
    expect(link).to_be_visible()
    uri = urlsplit(link.get_attribute("href"))
    key = page.get_by_label("Set-up key").inner_text().replace(" ", "")
    assert uri.scheme == "otpauth" and parse_qs(uri.query)["secret"] == [key]
    copy = page.get_by_role("button", name="Copy key")
    expect(copy).to_be_visible()
    copy.click()
    expect(page.get_by_text("Key copied. Paste it into your authentication app.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    # The QR code is still there for a second device.
    expect(page.get_by_role("img", name="QR code for your authentication app")).to_be_visible()


def test_a_slow_form_says_checking_and_sends_once(browser_page):
    page, username = browser_page, steps.new_username("pending")
    steps.sign_up(page, username)
    page.goto("/settings/security/two-factor/backup-codes/confirm/")
    page.get_by_label("Password", exact=True).fill(steps.PASSWORD)
    # Submit from inside the page so the button is read before the next page arrives.
    state = page.evaluate(
        """() => {
            const button = document.querySelector("button[data-pending]");
            const form = button.form;
            let sent = 0;
            form.addEventListener("submit", (event) => { if (!event.defaultPrevented) sent += 1; });
            form.requestSubmit(button);
            form.requestSubmit(button);
            return {text: button.textContent, busy: button.getAttribute("aria-disabled"), sent};
        }"""
    )
    assert state == {"text": "Checking…", "busy": "true", "sent": 1}
    steps.expect_sheet(page)


def test_times_read_relative_with_utc_in_the_title(browser_page):
    page, username = browser_page, steps.new_username("times")
    steps.sign_up(page, username)
    page.goto("/settings/security/events/")
    first = page.locator("time[data-local-time]").first
    expect(first).to_have_text(re.compile(r"^(just now|\d+ (seconds?|minutes?) ago)$"))
    assert re.search(r"\d{1,2} \w{3} \d{4}, \d{2}:\d{2} UTC\)?$", first.get_attribute("title"))
