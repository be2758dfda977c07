"""Fixtures for the browser tests: the app on a free port, Debian's Chromium, a tab per viewport.

No browser (or no Playwright, or no axe-core) skips these tests with one line saying why, unless
SPAREKEY_REQUIRE_BROWSER=1 is set (as in CI): then it is a failure.
"""

from __future__ import annotations

import os
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from app import create_app
from extensions import db

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"
DOCS_SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
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
READY_TIMEOUT_SECONDS = 15


def unavailable(reason: str) -> NoReturn:
    """Skip with one clear reason, or fail when the browser tests are required."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (SPAREKEY_REQUIRE_BROWSER=1 makes this a failure)", pytrace=False)
    pytest.skip(f"browser tests skipped: {reason}")


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
    server = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler
    )
    base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="sparekey-e2e", daemon=True)
    thread.start()
    try:
        wait_until_ready(base_url + "/accounts/login/")
        yield base_url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def wait_until_ready(url: str) -> None:
    """Poll until a GET answers 200. The socket is bound already, so connects queue, not fail."""
    last_error: Exception | None = None
    for _ in range(50):
        try:
            with urllib.request.urlopen(url, timeout=READY_TIMEOUT_SECONDS) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last_error = error
    raise RuntimeError(f"the test server at {url} never answered: {last_error}")


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        unavailable(f"Playwright is not importable ({error}); pip install -r requirements-dev.txt")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's `chromium` from the PATH when present, else Playwright's own build."""
    from playwright.sync_api import Error

    executable = shutil.which("chromium")
    try:
        browser = playwright_driver.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
    except Error as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        where = executable or "Playwright's bundled Chromium"
        unavailable(f"no usable Chromium ({where}): {first_line}; apt-get install chromium")
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_SCRIPT.is_file():
        unavailable(f"axe-core is not installed ({AXE_SCRIPT.relative_to(REPO_ROOT)}); run npm ci")
    return AXE_SCRIPT.read_text(encoding="utf-8")


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
