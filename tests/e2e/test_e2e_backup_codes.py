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

BUTTON_LABELS = ("Print", "Download", "Copy", "I saved my codes", "Void my old codes now")
PAGE_CHROME = (
    "Settings",
    "Log out",
    "Skip to content",
    "Save these codes now",
    "Lost your old sheet?",
)


def test_get_codes_then_get_back_in_with_one(browser_page, viewport, artifacts, axe_source):
    """Both journeys, with a screenshot and an axe-core scan of every page on the way."""
    page, username = browser_page, steps.new_username("walker")
    check = steps.Checkpoints(page, artifacts, viewport, axe_source, for_docs=True)

    steps.sign_up(page, username, check)
    codes = steps.get_backup_codes(page, username, check)
    steps.save_sheet_and_see_status(page, codes, check)
    steps.log_out(page, username, check)

    # Back, and back again, past the "Type code #k" page and the sheet: the codes never come back.
    from playwright.sync_api import Error as PlaywrightError

    passed = []
    for _ in range(6):
        try:
            page.go_back()
        except PlaywrightError as error:  # Chromium will not re-post a form: that is the point.
            assert "ERR_CACHE_MISS" in str(error), error
            page.wait_for_url(re.compile(r"^chrome-error://"))
        page.wait_for_load_state()
        passed.append(page.url)
        content = page.content()
        assert not any(code in content for code in codes), f"codes shown again at {page.url}"
        assert "Your backup codes" not in content, page.url
        steps.title_is(page, "Log in")
    # Each entry sent the browser to log in again, the sheet's and the saved page's among them.
    assert any("backup-codes%2Fnew%2F" in url and "saved" not in url for url in passed), passed
    assert any("backup-codes%2Fnew%2Fsaved%2F" in url for url in passed), passed
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


def print_sheet(page, artifacts: Path, name: str) -> tuple[Path, str]:
    """The sheet on paper: print media for a screenshot, then the PDF Chromium prints, as text."""
    page.emulate_media(media="print")
    steps.screenshot_whole_page(page, artifacts / f"{name}-print-media.png")
    pdf = artifacts / f"{name}.pdf"
    page.pdf(path=pdf, format="A4")
    page.emulate_media(media="screen")
    reader = PdfReader(pdf)
    assert len(reader.pages) == 1, "the sheet should fit on one sheet of paper"
    # NFKC: the PDF's text layer keeps typographic ligatures ("ﬀ" for "ff").
    printed = unicodedata.normalize(
        "NFKC", "\n".join(page_.extract_text() for page_ in reader.pages)
    )
    (artifacts / f"{name}.txt").write_text(printed, encoding="utf-8")
    return pdf, printed


def assert_only_the_sheet_printed(printed: str, codes: list[str], facts: steps.SheetFacts) -> None:
    for code in codes:
        assert code in printed, f"{code} missing from the printed sheet:\n{printed}"
    for fact in (facts.username, facts.set_id, facts.created, facts.use_at):
        assert fact in printed, f"{fact!r} missing from the printed sheet:\n{printed}"
    assert re.search(rf"Use at\s+{re.escape(facts.use_at)}", printed), printed
    # The sheet says where to check it ("Settings → Security → ..."): that line aside, no menu
    # or button of the page may reach the paper.
    assert re.search(r"Check this sheet at Settings.*?Backup Codes", printed, re.S)
    sheet_text = re.sub(r"Check this sheet at Settings.*?Backup Codes\.?", "", printed, flags=re.S)
    for word in BUTTON_LABELS + PAGE_CHROME:
        assert not re.search(rf"\b{re.escape(word)}", sheet_text), f"{word!r} was printed"


def test_code_sheet_prints_downloads_and_copies(browser_page, viewport, artifacts, live_server):
    page, username = browser_page, steps.new_username("sheet")
    steps.sign_up(page, username)
    codes = steps.get_backup_codes(page, username)
    facts = steps.sheet_facts(page)
    assert facts.username == username
    # "Use at": the site's address, for a sheet found in a drawer years later.
    assert facts.use_at == live_server, facts

    # On paper: only the sheet.
    pdf, printed = print_sheet(page, artifacts, "codes-sheet")
    assert_only_the_sheet_printed(printed, codes, facts)
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
    assert f"Use at: {live_server}" in text

    # Copy: the clipboard holds the ten codes, in order.
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied all 10 codes.")).to_be_visible()
    clipboard = page.evaluate("navigator.clipboard.readText()")
    assert re.findall(r"\d{4} \d{4}", clipboard) == codes, clipboard
    assert username in clipboard and facts.set_id in clipboard and live_server in clipboard

    # Download and Copy read the server's copy and changed nothing: a reload shows the same
    # sheet, and that set is the one in use once saved.
    page.reload()
    steps.expect_sheet(page)
    assert steps.codes_on_sheet(page) == codes
    assert steps.sheet_facts(page) == facts
    steps.save_sheet_and_see_status(page, codes)
    expect(page.get_by_text(facts.set_id, exact=True)).to_be_visible()


def same_sheet_again(page, codes: list[str], facts: steps.SheetFacts, where: str) -> None:
    """The sheet page shows the set it showed before: same id, same date, same ten codes."""
    steps.expect_sheet(page)
    assert steps.codes_on_sheet(page) == codes, f"other codes after {where}"
    assert steps.sheet_facts(page) == facts, f"another set after {where}"


def wait_on_the_sheet(page, codes: list[str], facts: steps.SheetFacts, check) -> int:
    """Reload the sheet three times, go to "Type code #k" and Back: always the same sheet.
    Returns k."""
    for reload in range(1, 4):
        page.reload()
        same_sheet_again(page, codes, facts, f"reload {reload}")
    check("sheet-after-three-reloads")
    number = steps.open_save_page(page, check)
    page.go_back()
    same_sheet_again(page, codes, facts, "Back from the Type code page")
    check("sheet-after-back")
    # The same code is asked for each time.
    assert steps.open_save_page(page) == number
    page.go_back()
    steps.expect_sheet(page)
    return number


def a_waiting_sheet(page, username: str, old_codes: list[str], check, **options):
    """New codes for an account whose set is saved: the sheet says the old codes keep working
    and offers to void them. Returns the codes and the sheet's facts."""
    codes = steps.get_backup_codes(page, username, check, **options)
    facts = steps.sheet_facts(page)
    assert not set(codes) & set(old_codes), "a new set reused old codes"
    expect(
        page.get_by_role("status").filter(has_text="Until you do, your old codes keep working")
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Lost your old sheet?")).to_be_visible()
    expect(page.get_by_role("button", name="Void my old codes now")).to_be_visible()
    check("sheet-waiting")
    return codes, facts


def see_codes_waiting(page, username: str, old_set: str, new_set: str, check, codes_left: int):
    """The Backup Codes page while the new set waits: the old set is the one counted, and a box
    leads back to the sheet."""
    steps.open_backup_codes(page, username)
    waiting = page.get_by_role("region", name="New codes waiting")
    expect(waiting).to_be_visible()
    expect(waiting).to_contain_text(f"Set {new_set} is not in use yet")
    expect(page.get_by_text(f"{codes_left} of 10")).to_be_visible()
    expect(page.get_by_text(old_set, exact=True)).to_be_visible()
    check("backup-codes-new-codes-waiting")
    waiting.get_by_role("link", name="Finish saving your new codes").click()


def test_new_codes_wait_until_their_sheet_is_saved(
    new_browser_context, viewport, artifacts, axe_source
):
    """An account with a saved set gets new codes: the sheet stays the same on reload and Back,
    the old codes keep working and the new ones do not until code #k is typed back."""
    username = steps.new_username("renewer")
    browsers = []

    def browser(name: str):
        page = new_browser_context().new_page()
        folder = artifacts / name
        folder.mkdir()
        check = steps.Checkpoints(page, folder, viewport, axe_source)
        browsers.append(check)
        return page, check

    # A first set, saved through the page.
    page, check = browser("1-owner")
    steps.sign_up(page, username, check)
    old = steps.get_backup_codes(page, username, check)
    old_set = steps.sheet_facts(page).set_id
    expect(page.get_by_role("button", name="Void my old codes now")).to_have_count(0)
    steps.save_sheet_and_see_status(page, old, check)

    # New codes: they wait. Their sheet prints without its on-screen parts.
    waiting, facts = a_waiting_sheet(page, username, old, check, codes_left=10)
    assert facts.set_id != old_set
    _, printed = print_sheet(page, artifacts / "1-owner", "waiting-sheet")
    assert_only_the_sheet_printed(printed, waiting, facts)
    wait_on_the_sheet(page, waiting, facts, check)
    see_codes_waiting(page, username, old_set, facts.set_id, check, codes_left=10)
    same_sheet_again(page, waiting, facts, "Finish saving your new codes")

    # Meanwhile, on another browser: a new code does not get in, an old one does. Getting in
    # with a code ends every session of the account, so this waiting sheet ends with them.
    other, other_check = browser("2-old-code-while-waiting")
    other.goto("/accounts/login/")
    steps.code_is_refused(other, username, waiting[0], other_check)
    other.get_by_role("link", name="Back to log in").click()
    steps.recover_and_set_new_password(other, username, old[0], 1, other_check)
    page.reload()
    steps.title_is(page, "Log in")
    assert not any(code in page.content() for code in waiting), "the sheet outlived its session"
    check("owner-logged-out-by-the-recovery")

    # The browser that got in (now with the new password) gets new codes: they wait too.
    page, check = other, other_check
    waiting, facts = a_waiting_sheet(
        page, username, old, check, password=steps.NEW_PASSWORD, codes_left=9
    )
    number = wait_on_the_sheet(page, waiting, facts, check)
    see_codes_waiting(page, username, old_set, facts.set_id, check, codes_left=9)
    same_sheet_again(page, waiting, facts, "Finish saving your new codes")

    # I saved my codes: another code of the sheet is refused and changes nothing ...
    assert steps.open_save_page(page, check) == number
    steps.wrong_code_is_refused_on_save(page, number, facts.set_id, waiting[number % 10], check)
    # ... code #k puts the new set in use and voids the old one.
    steps.type_code_from_sheet(page, waiting[number - 1])
    steps.see_saved_status(page, check, replacing=True)
    expect(page.get_by_text(facts.set_id, exact=True)).to_be_visible()

    # On a third browser: an old code is refused, a new one gets in.
    third, third_check = browser("3-codes-after-saving")
    third.goto("/accounts/login/")
    steps.code_is_refused(third, username, old[1], third_check)
    third.get_by_label("Backup code").fill(waiting[4])
    third.get_by_role("button", name="Submit").click()
    expect(third.get_by_text("You used backup code #5. 9 codes left.")).to_be_visible()
    expect(third.get_by_role("heading", name="Create a new password")).to_be_visible()
    third_check("new-code-gets-in")

    blocking = []
    for each in browsers:
        each.write_axe_report()
        blocking += each.blocking
    assert not blocking, "serious or critical accessibility problems:\n" + "\n".join(blocking)


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

    steps.save_sheet_and_see_status(page, codes, check)
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
