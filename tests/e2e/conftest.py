"""Fixtures for the browser tests: the app on a free port, Debian's Chromium, a tab per viewport.

No browser (or no Playwright) skips these tests with one line saying why; no axe-core skips only
the accessibility scan, again with one line. SPAREKEY_REQUIRE_BROWSER=1 (as in CI) makes either a
failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from werkzeug.serving import WSGIRequestHandler

from app import create_app
from extensions import db
from tools.live import running

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"
AXE_SCRIPT = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"

VIEWPORTS = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 800},
}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRE_BROWSER = os.environ.get("SPAREKEY_REQUIRE_BROWSER") == "1"
# Why the browser tests skip here (None: they run), and why the scan does (None: it runs).
NO_BROWSER = pytest.StashKey[str | None]()
NO_SCAN = pytest.StashKey[str]()


def unavailable(reason: str) -> NoReturn:
    """Skip with one clear reason, or fail when the browser tests are required."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (SPAREKEY_REQUIRE_BROWSER=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


class QuietRequestHandler(WSGIRequestHandler):
    """Errors still reach the log; one line per request would bury a failure's own output."""

    def log_request(self, code="-", size="-") -> None:
        pass


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app with its own SQLite file, served by werkzeug in a thread; yields the base URL."""
    database = tmp_path_factory.mktemp("e2e-db") / "sparekey.db"
    app = create_app(
        {
            "SPAREKEY_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
            "WTF_CSRF_ENABLED": True,
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        db.create_all()
    try:
        with running(app, request_handler=QuietRequestHandler) as base_url:
            yield base_url
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def launch_options() -> dict:
    """Debian's `chromium` from the PATH when present, else Playwright's own build."""
    return {"executable_path": shutil.which("chromium"), "headless": True, "args": CHROMIUM_ARGS}


def why_no_browser() -> str | None:
    """None if Playwright can start Chromium here, else the reason in one line."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as error:
        return f"no browser tests: Playwright is not importable ({error})"
    try:
        with sync_playwright() as driver:
            driver.chromium.launch(**launch_options()).close()
    except Error as error:
        return launch_failure(error)
    return None


def launch_failure(error: Exception) -> str:
    first_line = (str(error).strip().splitlines() or [repr(error)])[0]
    where = shutil.which("chromium") or "no `chromium` on PATH; Playwright's own"
    return f"no browser tests: Chromium ({where}) did not start: {first_line}"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Find out once, before any test runs, whether this machine can start the browser."""
    here = Path(__file__).parent
    browser_tests = [item for item in items if here in item.path.parents]
    if not browser_tests or REQUIRE_BROWSER:
        return  # when required, the fixtures below fail each test with the reason
    config.stash[NO_BROWSER] = why_no_browser()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Without a browser, skip each browser test from this one line: `-rs` folds them into one."""
    reason = item.config.stash.get(NO_BROWSER, None)
    if reason is not None:
        pytest.skip(reason)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Say once that the journeys ran without their accessibility scan."""
    reason = config.stash.get(NO_SCAN, None)
    if reason is not None:
        terminalreporter.write_line(f"SKIPPED {reason}", yellow=True, bold=True)


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        unavailable(f"no browser tests: Playwright is not importable ({error})")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright_driver: Playwright) -> Iterator[Browser]:
    from playwright.sync_api import Error

    try:
        browser = playwright_driver.chromium.launch(**launch_options())
    except Error as error:
        unavailable(launch_failure(error))
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def axe_source(request: pytest.FixtureRequest) -> str | None:
    """axe-core's script; None without it, so the journeys still run, only not scanned."""
    if AXE_SCRIPT.is_file():
        return AXE_SCRIPT.read_text(encoding="utf-8")
    missing = AXE_SCRIPT.relative_to(REPO_ROOT)
    reason = f"no accessibility scan: {missing} is missing (run npm ci)"
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (SPAREKEY_REQUIRE_BROWSER=1 makes this a failure)", pytrace=False)
    request.config.stash[NO_SCAN] = reason + "; the browser tests ran without it"
    return None


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    """The name of the screen size a test runs at: "phone" (390×844) or "desktop" (1280×800)."""
    return request.param


@pytest.fixture
def new_browser_context(chromium: Browser, live_server: str, viewport: str):
    """A factory of fresh contexts at this test's viewport (a person with an empty browser)."""
    contexts: list[BrowserContext] = []

    def make(**options) -> BrowserContext:
        context = chromium.new_context(
            base_url=live_server,
            viewport=VIEWPORTS[viewport],
            accept_downloads=True,
            locale="en-GB",
            timezone_id="UTC",
            **options,
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def browser_context(new_browser_context, live_server: str) -> BrowserContext:
    context = new_browser_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    return context


@pytest.fixture
def browser_page(browser_context: BrowserContext) -> Page:
    return browser_context.new_page()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest, viewport: str) -> Path:
    """test-artifacts/e2e/<test>/<viewport>/, emptied first so it shows only this run."""
    folder = ARTIFACTS / request.function.__name__.removeprefix("test_") / viewport
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder
