"""Issue 15 in a real browser: "Try the demo" → the tour → both journeys, phone and desktop, in a
sandbox account of this browser's own, with no password the visitor had to know."""

from __future__ import annotations

import re

import pytest

from tests.e2e import steps
from tests.e2e.steps import expect

pytestmark = pytest.mark.e2e


def callout(page, number: int, total: int, text: str):
    note = page.get_by_role("note", name=f"Tour, step {number} of {total}")
    expect(note).to_be_visible()
    expect(note).to_contain_text(text)
    return note


def demo_login(page) -> tuple[str, str]:
    """The username and password the demo banner shows."""
    banner = page.get_by_role("region", name="Demo account")
    expect(banner).to_be_visible()
    text = " ".join(banner.inner_text().split())
    found = re.search(r"Username (demo-[a-z]+-[a-z]+-\d\d) Password (\S+)", text)
    assert found is not None, text
    return found.group(1), found.group(2)


def test_try_the_demo_then_the_tour_through_both_journeys(
    new_browser_context, viewport, artifacts, axe_source
):
    page = new_browser_context().new_page()
    check = steps.Checkpoints(page, artifacts / "demo", viewport, axe_source)
    check.folder.mkdir(parents=True, exist_ok=True)
    page.goto("/")
    page.get_by_role("button", name="Try the demo").first.click()
    expect(page.get_by_role("heading", name="Show me how")).to_be_visible()
    username, password = demo_login(page)
    expect(page.get_by_role("region", name="Demo account")).to_contain_text(
        "This is a demo account."
    )
    check("demo-01-ready")

    # Journey 1: the tour gives the generated password where it asks for one.
    page.get_by_role("button", name="Start: Get your backup codes").click()
    callout(page, 1, 11, "Tap your profile picture")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
    page.get_by_role("button", name="Options").click()
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Security").click()
    page.get_by_role("link", name="Two-Factor Authentication").click()
    page.get_by_role("link", name="Backup Codes").click()
    page.get_by_role("link", name="Get Backup Codes").click()
    callout(page, 8, 11, f"Your demo password is {password}.")
    check("demo-02-confirm")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Confirm").click()
    callout(page, 9, 11, "Save your codes")
    codes = steps.codes_on_sheet(page)
    page.get_by_role("link", name="I saved my codes").click()
    number = steps.code_number_asked_for(page)
    steps.type_code_from_sheet(page, codes[number - 1])
    expect(page.get_by_role("region", name="Guided tour")).to_contain_text(
        "Done! Your codes are saved"
    )
    page.get_by_role("button", name="Finish the tour").click()

    # Journey 2: logged out, the log-in page still shows this browser's demo login, and the
    # tour says which name and which code to type.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    page.get_by_role("link", name="Show me how").first.click()
    page.get_by_role("button", name="Start: Use a backup code").click()
    expect(page.get_by_role("region", name="Demo account")).to_contain_text("Your demo account.")
    assert demo_login(page) == (username, password)
    callout(page, 1, 6, f"Yours is {username}.")
    check("demo-03-login")
    page.get_by_label("Phone number, username, or email").fill(username)
    page.get_by_role("button", name="Forgot password?").click()
    page.get_by_role("button", name="Use a backup code").click()
    callout(page, 4, 6, "Type code #1 from your sheet")
    check("demo-04-code")
    page.get_by_label("Backup code").fill(codes[0])
    page.get_by_role("button", name="Submit").click()
    page.get_by_label("New password", exact=True).fill(steps.NEW_PASSWORD)
    page.get_by_label("Confirm new password", exact=True).fill(steps.NEW_PASSWORD)
    page.get_by_role("button", name="Create a new password").click()
    expect(page.get_by_role("region", name="Guided tour")).to_contain_text("Done! You are back in")
    banner = page.get_by_role("region", name="Demo account")
    expect(banner).to_contain_text("the one you chose")
    expect(banner).not_to_contain_text(password)
    check("demo-05-done")

    # Start over: a fresh sandbox, signed in, with a new login.
    banner.get_by_role("button", name="Start over").click()
    fresh, _ = demo_login(page)
    assert fresh != username
    check.write_axe_report()
    assert not check.blocking, "\n".join(check.blocking)
