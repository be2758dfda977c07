"""The guided tour, both journeys, at phone and desktop size, with JavaScript on and off."""

from __future__ import annotations

import pytest

from tests.e2e import steps
from tests.e2e.steps import expect

pytestmark = pytest.mark.e2e

JAVASCRIPT = pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])


def callout(page, number: int, total: int, text: str):
    """The note for this step must be on the page, visible, and say what to do."""
    note = page.get_by_role("note", name=f"Tour, step {number} of {total}")
    expect(note).to_be_visible()
    expect(note).to_contain_text(text)
    return note


def open_tour(page, journey: str) -> None:
    page.get_by_role("link", name="Show me how").first.click()
    expect(page.get_by_role("heading", name="Show me how")).to_be_visible()
    page.get_by_role("button", name=f"Start: {journey}").click()


@JAVASCRIPT
def test_tour_get_your_backup_codes(
    new_browser_context, viewport, artifacts, axe_source, javascript
):
    page = new_browser_context(java_script_enabled=javascript).new_page()
    # axe-core runs only where the page runs JavaScript; the no-JS pages are the same HTML.
    folder = artifacts / ("js" if javascript else "no-js")
    check = steps.Checkpoints(page, folder, viewport, axe_source if javascript else None)
    check.folder.mkdir(parents=True, exist_ok=True)
    username = steps.new_username("tourist")
    steps.sign_up(page, username)
    open_tour(page, "Get your backup codes")

    callout(page, 1, 11, "Tap your profile picture at the bottom right (on a computer")
    check("tour-01-home")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
    callout(page, 2, 11, "Tap the three lines at the top right.")
    check("tour-02-profile")
    page.get_by_role("button", name="Options").click()
    callout(page, 3, 11, "Tap Settings.")
    check("tour-03-menu")
    page.get_by_role("link", name="Settings").click()
    callout(page, 4, 11, "Tap Security.")
    check("tour-04-settings")
    page.get_by_role("link", name="Security").click()
    callout(page, 5, 11, "Tap Two-Factor Authentication.")
    page.get_by_role("link", name="Two-Factor Authentication").click()
    callout(page, 6, 11, "Tap Backup Codes.")
    page.get_by_role("link", name="Backup Codes").click()
    callout(page, 7, 11, "Tap Get Backup Codes.")
    check("tour-07-backup-codes")
    page.get_by_role("link", name="Get Backup Codes").click()
    callout(page, 8, 11, "Type your password and tap Confirm.")
    page.get_by_label("Password", exact=True).fill(steps.PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    callout(page, 9, 11, "Save your codes: tap Print, Download or Copy.")
    callout(page, 10, 11, "Once they are saved somewhere safe, tap I saved my codes.")
    check("tour-09-sheet")
    codes = steps.codes_on_sheet(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download").click()
    assert download.value.suggested_filename.endswith(".txt")
    page.get_by_role("link", name="I saved my codes").click()
    note = callout(
        page, 11, 11, "Type the code it asks for from your saved sheet and tap Use these codes."
    )
    # Back on this callout returns to the sheet's steps.
    expect(note.get_by_role("link", name="Back")).to_be_visible()
    check("tour-11-saved")
    number = steps.code_number_asked_for(page)
    steps.type_code_from_sheet(page, codes[number - 1])
    banner = page.get_by_role("region", name="Guided tour")
    expect(banner).to_contain_text("Done! Your codes are saved")
    expect(page.get_by_text(steps.FIRST_SET_SAVED)).to_be_visible()
    check("tour-done", docs_name="tour-done")
    page.get_by_role("button", name="Finish the tour").click()
    expect(page.get_by_role("region", name="Guided tour")).to_have_count(0)
    expect(page.get_by_text("10 of 10")).to_be_visible()

    check.write_axe_report()
    assert not check.blocking, "\n".join(check.blocking)


def test_a_wrong_turn_shows_the_way_back(new_browser_context, viewport):
    page = new_browser_context().new_page()
    username = steps.new_username("wanderer")
    steps.sign_up(page, username)
    open_tour(page, "Get your backup codes")
    steps.open_options_menu(page, username)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Security").click()
    callout(page, 5, 11, "Tap Two-Factor Authentication.")
    page.get_by_role("link", name="Password").click()  # the wrong turn
    banner = page.get_by_role("region", name="Guided tour")
    expect(banner).to_contain_text("You left the tour's path. Step 5 is on the Security page.")
    banner.get_by_role("link", name="Back to step 5").click()
    callout(page, 5, 11, "Tap Two-Factor Authentication.")
    # Back on a callout goes one step back; Exit ends the tour where one stands.
    note = callout(page, 5, 11, "Tap Two-Factor Authentication.")
    note.get_by_role("link", name="Back").click()
    callout(page, 4, 11, "Tap Security.")
    page.get_by_role("note").get_by_role("button", name="Exit tour").click()
    expect(page.get_by_role("note")).to_have_count(0)
    expect(page.get_by_role("heading", name="Settings")).to_be_attached()


@JAVASCRIPT
def test_tour_use_a_backup_code(new_browser_context, viewport, artifacts, axe_source, javascript):
    page = new_browser_context(java_script_enabled=javascript).new_page()
    # axe-core runs only where the page runs JavaScript; the no-JS pages are the same HTML.
    folder = artifacts / ("js" if javascript else "no-js")
    check = steps.Checkpoints(page, folder, viewport, axe_source if javascript else None)
    check.folder.mkdir(parents=True, exist_ok=True)
    username = steps.new_username("locked")
    steps.sign_up(page, username)
    codes = steps.get_backup_codes(page, username)
    steps.save_sheet_and_see_status(page, codes)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    open_tour(page, "Use a backup code")

    callout(page, 1, 6, "Type your username.")
    callout(page, 2, 6, "Tap Forgot password?")
    check("tour-use-01-login")
    page.get_by_label("Phone number, username, or email").fill(username)
    page.get_by_role("button", name="Forgot password?").click()
    callout(page, 3, 6, "Tap Use a backup code.")
    page.get_by_role("button", name="Use a backup code").click()
    callout(page, 4, 6, "Type one code from your sheet.")
    callout(page, 5, 6, "Tap Submit.")
    check("tour-use-04-code")
    page.get_by_label("Backup code").fill(codes[0])
    page.get_by_role("button", name="Submit").click()
    callout(page, 6, 6, "Choose a new password")
    expect(page.get_by_text("You used backup code #1. 9 codes left.")).to_be_visible()
    page.get_by_label("New password", exact=True).fill(steps.NEW_PASSWORD)
    page.get_by_label("Confirm new password", exact=True).fill(steps.NEW_PASSWORD)
    page.get_by_role("button", name="Create a new password").click()
    banner = page.get_by_role("region", name="Guided tour")
    expect(banner).to_contain_text("Done! You are back in")
    check("tour-use-done")
    page.get_by_role("button", name="Finish the tour").click()
    expect(page.get_by_role("heading", name=f"Hi, {username}")).to_be_visible()

    check.write_axe_report()
    assert not check.blocking, "\n".join(check.blocking)
