"""What a person does in the browser, step by step, found by role, name and label only.

Only the first page is reached by typing its address. Playwright is imported inside the
functions, so a machine without it still collects these tests (and conftest.py skips them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

PASSWORD = "lantern quietly orbit 73"
NEW_PASSWORD = "a fresh tide of pebbles 19"
CODE_ITEM = re.compile(r"^\s*(\d{1,2})\.\s+(\d{4} \d{4})\s*$")
SHEET_SET = re.compile(r"\bSet\s+([2-9A-Z]{4})\b")
SHEET_CREATED = re.compile(r"\bCreated\s+(\d{1,2} \w{3} \d{4}, \d{2}:\d{2} UTC)")
SHEET_USE_AT = re.compile(r"\bUse at\s+(\S+)")
SAVE_HEADING = re.compile(r"^Type code #(\d{1,2}) from your new sheet$")
SHEET_URL = re.compile(r"/settings/security/two-factor/backup-codes/new/$")
SAVED_URL = re.compile(r"/settings/security/two-factor/backup-codes/new/saved/$")
FIRST_SET_SAVED = "Your backup codes are saved and ready to use."
NEW_SET_IN_USE = "Your new backup codes are in use. Your old codes no longer work."
BLOCKING_IMPACTS = ("serious", "critical")

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
# Screenshots kept for the README, taken at phone size; refreshed only when asked for.
UPDATE_DOCS = os.environ.get("SPAREKEY_UPDATE_SCREENSHOTS") == "1"

AXE_RUN = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
    nodes: v.nodes.map(n => n.target.join(" ") + ": " + (n.failureSummary || "")),
  }));
}"""


def new_username(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def expect(target):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@dataclass
class Checkpoints:
    """Called at every page: a screenshot, and (with axe-core) an accessibility scan."""

    page: Page
    folder: Path
    viewport: str
    axe_source: str | None = None
    # Only the main journey refreshes docs/screenshots/, at phone size, and only when asked.
    for_docs: bool = False
    taken: int = 0
    axe_findings: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)

    def __call__(self, name: str, *, docs_name: str | None = None) -> Path:
        self.taken += 1
        path = self.folder / f"{self.taken:02d}-{name}.png"
        screenshot_whole_page(self.page, path)
        if docs_name and self.for_docs and self.viewport == "phone" and UPDATE_DOCS:
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            # What a phone shows without scrolling: the README's pictures stay small.
            self.page.screenshot(path=DOCS_SCREENSHOTS / f"{docs_name}.png")
        if self.axe_source is not None:
            self.scan(name)
        return path

    def scan(self, name: str) -> None:
        # Evaluated through the DevTools protocol, so the site's CSP (script-src 'self') stays on.
        if self.page.evaluate("typeof window.axe") != "object":
            self.page.evaluate(self.axe_source + "\n;undefined")
        for violation in self.page.evaluate(AXE_RUN):
            line = (
                f"{self.viewport} {name} ({self.page.url}): [{violation['impact']}] "
                f"{violation['id']}: {violation['help']} <{violation['url']}>"
            )
            details = "".join(f"\n    {' '.join(node.split())}" for node in violation["nodes"])
            self.axe_findings.append(line + details)
            if violation["impact"] in BLOCKING_IMPACTS:
                self.blocking.append(line + details)

    def write_axe_report(self) -> None:
        if self.axe_source is None:
            report = "Not scanned: no axe-core here (or JavaScript off)."
        else:
            report = "\n".join(self.axe_findings) or "No axe-core violations of any impact."
        (self.folder / "axe-report.txt").write_text(report + "\n", encoding="utf-8")


def screenshot_whole_page(page: Page, path: Path) -> None:
    """A screen as tall as the page, so fixed bars sit at its bottom and cover nothing."""
    size = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    if size is None or height <= size["height"]:
        page.screenshot(path=path)
        return
    page.set_viewport_size({"width": size["width"], "height": height})
    try:
        page.screenshot(path=path)
    finally:
        page.set_viewport_size(size)


def no_checkpoints(name: str, **_options) -> None:
    """For tests that walk the path only to get somewhere."""


def title_is(page: Page, title: str) -> None:
    expect(page).to_have_title(f"{title} · Sparekey")


# Journey 1: sign up, then profile picture → Options → Settings → ... → ten codes.


def sign_up(page: Page, username: str, check=no_checkpoints, password: str = PASSWORD) -> None:
    page.goto("/")
    title_is(page, "Welcome")
    check("welcome")
    page.get_by_role("link", name="Log in", exact=True).click()
    title_is(page, "Log in")
    check("login", docs_name="login")
    page.get_by_role("link", name="Sign up").click()
    title_is(page, "Sign up")
    check("signup")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name=f"Hi, {username}")).to_be_visible()
    check("home-no-codes")


def open_options_menu(page: Page, username: str, check=no_checkpoints) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", name=username, exact=True)).to_be_visible()
    check("profile")
    page.get_by_role("button", name="Options").click()
    expect(page.get_by_role("link", name="Settings")).to_be_visible()
    check("profile-menu-open", docs_name="profile-menu")


def open_backup_codes(page: Page, username: str, check=no_checkpoints) -> None:
    """From any page with the bottom bar to Settings → ... → Backup Codes."""
    open_options_menu(page, username, check)
    page.get_by_role("link", name="Settings").click()
    title_is(page, "Settings")
    check("settings")
    page.get_by_role("link", name="Security").click()
    title_is(page, "Security")
    check("security")
    page.get_by_role("link", name="Two-Factor Authentication").click()
    title_is(page, "Two-Factor Authentication")
    check("two-factor")
    page.get_by_role("link", name="Backup Codes").click()
    title_is(page, "Backup Codes")


def get_backup_codes(
    page: Page,
    username: str,
    check=no_checkpoints,
    password: str = PASSWORD,
    *,
    codes_left: int | None = None,
) -> list[str]:
    """From any page with the bottom bar to the sheet; returns the codes as shown ("1234 5678").
    `codes_left`: the count the Backup Codes page shows first (None: "No codes yet")."""
    open_backup_codes(page, username, check)
    if codes_left is None:
        expect(page.get_by_text("No codes yet")).to_be_visible()
        check("backup-codes-none")
    else:
        expect(page.get_by_text(f"{codes_left} of 10")).to_be_visible()
        check("backup-codes-before-new-ones")
    page.get_by_role("link", name="Get Backup Codes").click()
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    check("confirm")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Confirm").click()
    expect_sheet(page)
    codes = codes_on_sheet(page)
    check("codes-sheet", docs_name="codes-sheet")
    return codes


def expect_sheet(page: Page) -> None:
    """The sheet: its own page (a GET after Confirm's redirect), so reload and Back show it."""
    expect(page).to_have_url(SHEET_URL)
    title_is(page, "Your backup codes")
    expect(page.get_by_role("heading", name="Your backup codes", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="I saved my codes")).to_be_visible()


def codes_on_sheet(page: Page) -> list[str]:
    items = page.get_by_role("article").get_by_role("listitem").all_inner_texts()
    numbered = [match.groups() for item in items if (match := CODE_ITEM.match(item))]
    assert [int(number) for number, _ in numbered] == list(range(1, 11)), items
    codes = [code for _, code in numbered]
    assert len(set(codes)) == 10, codes
    return codes


@dataclass
class SheetFacts:
    username: str
    set_id: str
    created: str
    use_at: str


def sheet_facts(page: Page) -> SheetFacts:
    text = page.get_by_role("article").inner_text()
    set_match, created_match = SHEET_SET.search(text), SHEET_CREATED.search(text)
    use_at_match = SHEET_USE_AT.search(text)
    assert set_match and created_match and use_at_match, text
    username = page.get_by_role("article").get_by_role("definition").first.inner_text().strip()
    return SheetFacts(username, set_match.group(1), created_match.group(1), use_at_match.group(1))


def open_save_page(page: Page, check=no_checkpoints) -> int:
    """ "I saved my codes" on the sheet; returns k of "Type code #k from your new sheet"."""
    page.get_by_role("link", name="I saved my codes").click()
    expect(page).to_have_url(SAVED_URL)
    title_is(page, "Saved your codes?")
    number = code_number_asked_for(page)
    expect(page.get_by_label("Code from your new sheet")).to_be_visible()
    check("save-codes", docs_name="save-codes")
    return number


def code_number_asked_for(page: Page) -> int:
    """k, from the heading "Type code #k from your new sheet"."""
    heading = page.get_by_role("heading", name=SAVE_HEADING)
    expect(heading).to_be_visible()
    match = SAVE_HEADING.match(heading.inner_text().strip())
    assert match, heading.inner_text()
    number = int(match.group(1))
    assert 1 <= number <= 10, number
    return number


def type_code_from_sheet(page: Page, code: str) -> None:
    page.get_by_label("Code from your new sheet").fill(code)
    page.get_by_role("button", name="Use these codes").click()


def wrong_code_is_refused_on_save(
    page: Page, number: int, set_id: str, code: str, check=no_checkpoints
) -> None:
    """Not code #k: the same page says which code it wants, and nothing changes."""
    type_code_from_sheet(page, code)
    expect(page).to_have_url(SAVED_URL)
    expect(
        page.get_by_text(
            f"That is not code #{number} of your new sheet ({set_id}). Find #{number} on the "
            "sheet you saved and type it."
        )
    ).to_be_visible()
    field = page.get_by_label("Code from your new sheet")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value("")  # a typed code is never echoed back
    expect(
        page.get_by_role("heading", name=f"Type code #{number} from your new sheet")
    ).to_be_visible()
    check("save-codes-wrong-code")


def save_sheet_and_see_status(
    page: Page, codes: list[str], check=no_checkpoints, *, replacing: bool = False
) -> None:
    """ "I saved my codes", then code #k typed back from the sheet: the Backup Codes page."""
    number = open_save_page(page, check)
    type_code_from_sheet(page, codes[number - 1])
    see_saved_status(page, check, replacing=replacing)


def see_saved_status(page: Page, check=no_checkpoints, *, replacing: bool = False) -> None:
    title_is(page, "Backup Codes")
    expect(
        page.get_by_role("status").filter(has_text=NEW_SET_IN_USE if replacing else FIRST_SET_SAVED)
    ).to_be_visible()
    expect(page.get_by_text("10 of 10")).to_be_visible()
    expect(page.get_by_role("heading", name="New codes waiting")).to_have_count(0)
    check("backup-codes-status", docs_name="backup-codes-status")


def log_out(page: Page, username: str, check=no_checkpoints) -> None:
    open_options_menu(page, username)
    page.get_by_role("button", name="Log out").click()
    title_is(page, "Log in")
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    check("logged-out")


def log_in(page: Page, username: str, password: str, check=no_checkpoints) -> None:
    page.get_by_label("Phone number, username, or email").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name=f"Hi, {username}")).to_be_visible()
    check("logged-in-with-new-password")


# Journey 2: "Forgot password?" → "Use a backup code" → a new password.


def enter_backup_code(page: Page, username: str, code: str, check=no_checkpoints) -> None:
    """From the log-in page to a submitted backup code."""
    page.get_by_label("Phone number, username, or email").fill(username)
    page.get_by_role("button", name="Forgot password?").click()
    expect(page.get_by_role("heading", name="Trouble logging in?")).to_be_visible()
    expect(page.get_by_label("Phone number, username, or email")).to_have_value(username)
    check("trouble-logging-in")
    page.get_by_role("button", name="Use a backup code").click()
    expect(page.get_by_role("heading", name="Enter a backup code")).to_be_visible()
    check("enter-backup-code")
    page.get_by_label("Backup code").fill(code)
    page.get_by_role("button", name="Submit").click()


def recover_and_set_new_password(
    page: Page, username: str, code: str, number: int, check=no_checkpoints
) -> None:
    enter_backup_code(page, username, code, check)
    expect(page.get_by_text(f"You used backup code #{number}. 9 codes left.")).to_be_visible()
    expect(page.get_by_role("heading", name="Create a new password")).to_be_visible()
    check("recovered", docs_name="recovery-success")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Create a new password").click()
    expect(page.get_by_text("Your new password is saved.")).to_be_visible()
    check("new-password-saved")


def code_is_refused(page: Page, username: str, code: str, check=no_checkpoints) -> None:
    enter_backup_code(page, username, code)
    expect(page.get_by_text("That code did not work.")).to_be_visible()
    expect(page.get_by_label("Backup code")).to_have_attribute("aria-invalid", "true")
    check("code-refused")


def pdf_first_page_png(pdf: Path, png_stem: Path) -> Path | None:
    """Page 1 of the PDF as a PNG next to it, if poppler's pdftoppm is installed."""
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        return None
    subprocess.run(  # noqa: S603
        [pdftoppm, "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile", pdf, png_stem],
        check=True,
        timeout=60,
    )
    return png_stem.with_suffix(".png")


# Keyboard and focus.

FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  const ring = outline || s.boxShadow !== "none";
  const name = el.getAttribute("aria-label") || el.textContent.trim() || el.name || el.id;
  return {tag: el.tagName.toLowerCase(), name: name.slice(0, 40), ring: ring};
}"""


def focus_problems(page: Page, stops: int = 25) -> list[str]:
    """Tab through the page from the top: every element that takes focus must show a ring."""
    page.locator("body").focus()
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    problems, seen = [], []
    for _ in range(stops):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUS_RING)
        if focused is None or focused in seen[:1]:
            break
        seen.append(focused)
        if not focused["ring"]:
            problems.append(f"<{focused['tag']}> {focused['name']!r} has no visible focus")
    assert seen, "Tab reached nothing on the page"
    return problems


def tab_to(page: Page, target, stops: int = 25) -> None:
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for _ in range(stops):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")
