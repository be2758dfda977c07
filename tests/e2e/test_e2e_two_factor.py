"""A phone camera reads the set-up QR code: turn the app on, log in with it, then with a code."""

from __future__ import annotations

import os
import time

import pyotp
import pytest

from tests.e2e import steps
from tests.e2e.steps import expect

pytestmark = pytest.mark.e2e


def read_qr(path) -> str:
    """Decode the QR code in a screenshot with zbar, as a phone's camera app would."""
    try:
        from PIL import Image
        from pyzbar.pyzbar import decode
    except ImportError as error:  # libzbar0 (Debian) or pyzbar missing
        if os.environ.get("SPAREKEY_REQUIRE_BROWSER") == "1":
            pytest.fail(f"cannot read QR codes: {error}", pytrace=False)
        pytest.skip(f"cannot read QR codes: {error} (apt-get install libzbar0)")
    found = decode(Image.open(path))
    assert len(found) == 1, f"expected one QR code in {path}, found {len(found)}"
    return found[0].data.decode()


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30-second step: the server accepts one step of drift, and the
    current step may already be spent by the code that turned the app on."""
    return totp.at(int(time.time()) + 30)


def test_turn_on_the_app_from_its_qr_code_then_log_in_with_it(
    browser_page, viewport, artifacts, axe_source
):
    page, username = browser_page, steps.new_username("camera")
    check = steps.Checkpoints(page, artifacts, viewport, axe_source, for_docs=True)
    steps.sign_up(page, username)
    steps.open_options_menu(page, username)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Security").click()
    page.get_by_role("link", name="Two-Factor Authentication").click()
    page.get_by_role("link", name="Authentication app").click()
    expect(page.get_by_role("heading", name="Authentication app")).to_be_visible()
    check("app-off")
    page.get_by_role("button", name="Set up authentication app").click()
    qr = page.get_by_role("img", name="QR code for your authentication app")
    expect(qr).to_be_visible()
    check("app-setup", docs_name="app-setup")
    qr_png = artifacts / "qr-code.png"
    # On a phone the set-up link comes first and the QR code further down: scroll it clear of
    # the bottom bar, as a person showing it to a second device would.
    qr.evaluate("element => element.scrollIntoView({block: 'center'})")
    qr.screenshot(path=qr_png)

    totp = pyotp.parse_uri(read_qr(qr_png))
    assert totp.issuer == "Sparekey" and totp.name == username
    key_text = page.get_by_label("Set-up key").inner_text().replace(" ", "")
    assert key_text == totp.secret

    page.get_by_label("6-digit code").fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_label("Password", exact=True).fill(steps.PASSWORD)
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_text("That code did not match")).to_be_visible()
    check("app-setup-wrong-code")
    page.get_by_label("6-digit code").fill(totp.now())
    page.get_by_label("Password", exact=True).fill(steps.PASSWORD)
    page.get_by_role("button", name="Turn on").click()
    # No codes yet, so the browser goes straight on to the first sheet.
    expect(page.get_by_text("Your authentication app is on.")).to_be_visible()
    steps.expect_sheet(page)
    codes = steps.codes_on_sheet(page)
    check("codes-after-app-on")
    # Its own page: a reload shows the same sheet, without the one-time message.
    set_id = steps.sheet_facts(page).set_id
    page.reload()
    steps.expect_sheet(page)
    expect(page.get_by_text("Your authentication app is on.")).to_have_count(0)
    assert steps.codes_on_sheet(page) == codes and steps.sheet_facts(page).set_id == set_id
    steps.save_sheet_and_see_status(page, codes)
    steps.log_out(page, username)

    # Log in: the password, then the app's code.
    page.get_by_label("Phone number, username, or email").fill(username)
    page.get_by_label("Password", exact=True).fill(steps.PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_text("Enter the 6-digit code from your authentication app.")).to_be_visible()
    check("two-factor-step", docs_name="two-factor-step")
    page.get_by_label("6-digit code").fill(next_code(totp))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name=f"Hi, {username}")).to_be_visible()
    expect(page.get_by_text("On — authentication app")).to_be_visible()
    check("logged-in-with-app")
    steps.log_out(page, username)

    # Log in: the password, then a backup code instead of the app.
    page.get_by_label("Phone number, username, or email").fill(username)
    page.get_by_label("Password", exact=True).fill(steps.PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.get_by_role("link", name="Use a backup code").click()
    check("two-factor-backup-code")
    page.get_by_label("Backup code").fill(codes[3].replace(" ", "-"))
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("You used backup code #4. 9 codes left.")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Hi, {username}")).to_be_visible()
    check("logged-in-with-backup-code")
    steps.log_out(page, username)

    # The "Use a backup code" tour, for this account with an app: after the first code the
    # tour explains the extra step instead of calling it a wrong turn, then goes on.
    page.get_by_role("link", name="Show me how").first.click()
    page.get_by_role("button", name="Start: Use a backup code").click()
    page.get_by_label("Phone number, username, or email").fill(username)
    page.get_by_role("button", name="Forgot password?").click()
    page.get_by_role("button", name="Use a backup code").click()
    page.get_by_label("Backup code").fill(codes[5])
    page.get_by_role("button", name="Submit").click()
    banner = page.get_by_role("region", name="Guided tour")
    expect(banner).to_contain_text("This account also has an authentication app")
    expect(banner.get_by_role("link")).to_have_count(0)
    expect(banner.get_by_role("button", name="Exit tour")).to_be_visible()
    check("tour-use-app-step")
    page.get_by_role("link", name="Lost your phone too? Use a second backup code").click()
    expect(banner).to_contain_text("This account also has an authentication app")
    page.get_by_label("Backup code").fill(codes[6])
    page.get_by_role("button", name="Submit").click()
    note = page.get_by_role("note", name="Tour, step 6 of 6")
    expect(note).to_contain_text("Choose a new password")
    check("tour-use-after-app-step")

    check.write_axe_report()
    assert not check.blocking, "serious or critical accessibility problems:\n" + "\n".join(
        check.blocking
    )
