"""A real Chromium walks both journeys: get a sheet of backup codes, then get back in with one."""

from __future__ import annotations

import re
import shutil
import unicodedata
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.e2e import steps
from tests.e2e.steps import expect

pytestmark = pytest.mark.e2e

BUTTON_LABELS = ("Print", "Download", "Copy", "Done")
PAGE_CHROME = ("Settings", "Log out", "Skip to content", "Save these codes now")


def test_get_codes_then_get_back_in_with_one(browser_page, viewport, artifacts, axe_source):
    """Both journeys, with a screenshot and an axe-core scan of every page on the way."""
    page, username = browser_page, steps.new_username("walker")
    check = steps.Checkpoints(page, artifacts, viewport, axe_source, for_docs=True)

    steps.sign_up(page, username, check)
    codes = steps.get_backup_codes(page, username, check)
    steps.press_done_and_see_status(page, check)
    steps.log_out(page, username, check)

    # Back, and back again, to where the sheet was: the codes never come back.
    from playwright.sync_api import Error as PlaywrightError

    for _ in range(4):
        try:
            page.go_back()
        except PlaywrightError as error:  # Chromium will not re-post the form: that is the point.
            assert "ERR_CACHE_MISS" in str(error), error
            page.wait_for_url(re.compile(r"^chrome-error://"))
        content = page.content()
        assert not any(code in content for code in codes), f"codes shown again at {page.url}"
        assert "Your backup codes" not in content
    # The sheet's entry could not be shown again; one more Back lands on a log-in page.
    steps.title_is(page, "Log in")
    check("back-button-after-log-out")

    steps.recover_and_set_new_password(page, username, codes[2], 3, check)
    steps.log_out(page, username)
    steps.log_in(page, username, steps.NEW_PASSWORD, check)
    steps.log_out(page, username)
    steps.code_is_refused(page, username, codes[2], check)

    check.write_axe_report()
    assert not check.blocking, "serious or critical accessibility problems:\n" + "\n".join(
        check.blocking
    )


def test_code_sheet_prints_downloads_and_copies(browser_page, viewport, artifacts):
    page, username = browser_page, steps.new_username("sheet")
    steps.sign_up(page, username)
    codes = steps.get_backup_codes(page, username)
    facts = steps.sheet_facts(page)
    assert facts.username == username

    # On paper: only the sheet. Print media first for a screenshot, then the PDF Chromium prints.
    page.emulate_media(media="print")
    steps.screenshot_whole_page(page, artifacts / "sheet-print-media.png")
    pdf = artifacts / "codes-sheet.pdf"
    page.pdf(path=pdf, format="A4")
    page.emulate_media(media="screen")
    reader = PdfReader(pdf)
    assert len(reader.pages) == 1, "the sheet should fit on one sheet of paper"
    # NFKC: the PDF's text layer keeps typographic ligatures ("ﬀ" for "ff").
    printed = unicodedata.normalize(
        "NFKC", "\n".join(page_.extract_text() for page_ in reader.pages)
    )
    (artifacts / "codes-sheet.txt").write_text(printed, encoding="utf-8")
    for code in codes:
        assert code in printed, f"{code} missing from the printed sheet:\n{printed}"
    for fact in (facts.username, facts.set_id, facts.created):
        assert fact in printed, f"{fact!r} missing from the printed sheet:\n{printed}"
    # The sheet says where to check it ("Settings → Security → ..."): that line aside, no menu
    # or button of the page may reach the paper.
    assert re.search(r"Check this sheet at Settings.*?Backup Codes", printed, re.S)
    sheet_text = re.sub(r"Check this sheet at Settings.*?Backup Codes\.?", "", printed, flags=re.S)
    for word in BUTTON_LABELS + PAGE_CHROME:
        assert not re.search(rf"\b{re.escape(word)}\b", sheet_text), f"{word!r} was printed"
    png = steps.pdf_first_page_png(pdf, artifacts / "codes-sheet-pdf-page-1")
    if png is not None and viewport == "phone" and steps.UPDATE_DOCS:
        steps.DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, steps.DOCS_SCREENSHOTS / "codes-sheet-pdf.png")

    # Download: a .txt with the same ten codes, in order, named after the account and the set.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == f"sparekey-backup-codes-{username}-{facts.set_id}.txt"
    download.save_as(artifacts / download.suggested_filename)
    text = Path(download.path()).read_text(encoding="utf-8")
    assert re.findall(r"\d{4} \d{4}", text) == codes, text
    assert f"Set: {facts.set_id}" in text
    assert f"Account: {username}" in text

    # Copy: the clipboard holds the ten codes, in order.
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied all 10 codes.")).to_be_visible()
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert re.findall(r"\d{4} \d{4}", clipboard) == codes, clipboard
    assert username in clipboard and facts.set_id in clipboard

    # The download did not use up or replace anything: the same set is current.
    steps.press_done_and_see_status(page)
    expect(page.get_by_text(facts.set_id, exact=True)).to_be_visible()


def test_core_path_without_javascript(new_browser_context, viewport, artifacts):
    page = new_browser_context(java_script_enabled=False).new_page()
    check = steps.Checkpoints(page, artifacts, viewport)
    username = steps.new_username("nojs")

    steps.sign_up(page, username, check)
    codes = steps.get_backup_codes(page, username, check)
    # Print and Copy need JavaScript and stay hidden; Download is a plain form and works.
    expect(page.get_by_role("button", name="Print")).to_be_hidden()
    expect(page.get_by_role("button", name="Copy")).to_be_hidden()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download").click()
    assert re.findall(r"\d{4} \d{4}", Path(download_info.value.path()).read_text()) == codes

    steps.press_done_and_see_status(page, check)
    steps.log_out(page, username, check)
    # Dashes are as good as spaces.
    steps.recover_and_set_new_password(page, username, codes[6].replace(" ", "-"), 7, check)
    steps.log_out(page, username)
    steps.log_in(page, username, steps.NEW_PASSWORD, check)


def test_keyboard_reaches_the_menu_and_focus_is_visible(browser_page, viewport):
    page, username = browser_page, steps.new_username("keys")
    page.goto("/accounts/login/")
    assert steps.focus_problems(page) == []

    steps.sign_up(page, username)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", name=username, exact=True)).to_be_visible()
    assert steps.focus_problems(page) == []

    options = page.get_by_role("button", name="Options")
    steps.tab_to(page, options)
    outline = options.evaluate(
        "el => { const s = getComputedStyle(el); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] != "none" and outline[1] != "0px", outline

    page.keyboard.press("Enter")
    expect(options).to_have_attribute("aria-expanded", "true")
    settings = page.get_by_role("link", name="Settings")
    expect(settings).to_be_visible()
    page.keyboard.press("Escape")
    expect(settings).to_be_hidden()
    expect(options).to_be_focused()

    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(settings).to_be_focused()
    page.keyboard.press("Enter")
    steps.title_is(page, "Settings")
