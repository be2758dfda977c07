"""`make quality`: Lighthouse and pa11y against the pages people see; figures in docs/quality.md.

Starts the app (test configuration, a fresh SQLite database, a threaded local server), signs up
an account, gets its backup codes and starts a new sheet, then runs

- Lighthouse (performance, accessibility, best practices, SEO) on log-in, Home, Backup Codes and
  the sheet, at phone size (Lighthouse's mobile emulation) and desktop size (its desktop preset);
  every score must be at least `TARGET`;
- pa11y (axe runner, standard WCAG2AA, plus axe's WCAG 2.2 rule `target-size`) on every page a
  person can reach; every page must have 0 errors.

Signed-in pages get the session cookie through the tools' extra headers. Both tools drive the
browser named by CHROME_PATH (Debian's Chromium by default). Exits 1 when a target is missed,
2 when a tool cannot run; the figures are written either way.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess  # nosec B404: runs the two pinned npm tools, with fixed arguments
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

from werkzeug.serving import WSGIRequestHandler

from tools.live import Browser, csrf_from, running

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "node_modules" / ".bin"
REPORT = ROOT / "docs" / "quality.md"
TARGET = 95
RUNS_WHEN_MISSED = 3
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
CATEGORY_NAMES = {
    "performance": "Performance",
    "accessibility": "Accessibility",
    "best-practices": "Best practices",
    "seo": "SEO",
}
PA11Y_STANDARD = "WCAG2AA"
# axe's rules tagged WCAG 2.2 AA that pa11y's WCAG2AA standard does not switch on.
WCAG22_RULES = ["target-size"]
USERNAME = "quality"
PASSWORD = "quality check long password"  # nosec B105: a throwaway account on a throwaway database

CONFIRM = "/settings/security/two-factor/backup-codes/confirm/"
SHEET = "/settings/security/two-factor/backup-codes/new/"
SAVED = "/settings/security/two-factor/backup-codes/new/saved/"
BACKUP_CODES = "/settings/security/two-factor/backup-codes/"
APP_SETUP = "/settings/security/two-factor/app/setup/"

# (name, path, who): Lighthouse's pages, each at phone and desktop size.
LIGHTHOUSE_PAGES = [
    ("Log in", "/accounts/login/", "visitor"),
    ("Home", "/", "owner"),
    ("Backup Codes", BACKUP_CODES, "owner"),
    ("The sheet", SHEET, "owner"),
]
# pa11y's pages: every page a person reaches with a plain GET.
PA11Y_PAGES = [
    ("Welcome", "/", "visitor"),
    ("Log in", "/accounts/login/", "visitor"),
    ("Sign up", "/accounts/signup/", "visitor"),
    ("Trouble logging in?", "/accounts/password/reset/", "visitor"),
    ("Enter backup code", "/accounts/password/reset/backup-code/", "recovering"),
    ("How backup codes work", "/help/backup-codes/", "visitor"),
    ("Show me how", "/tour/", "visitor"),
    ("Home", "/", "owner"),
    ("Profile", f"/{USERNAME}/", "owner"),
    ("Settings", "/settings/", "owner"),
    ("Security", "/settings/security/", "owner"),
    ("Two-Factor Authentication", "/settings/security/two-factor/", "owner"),
    ("Backup Codes", BACKUP_CODES, "owner"),
    ("Confirm it's you", CONFIRM, "owner"),
    ("The sheet", SHEET, "owner"),
    ("Saved?", SAVED, "owner"),
    ("Check a saved code", "/settings/security/two-factor/backup-codes/check/", "owner"),
    ("Authentication app", "/settings/security/two-factor/app/", "owner"),
    ("Set up authentication app", APP_SETUP, "owner"),
    ("Password", "/settings/security/password/", "owner"),
    ("Login activity", "/settings/security/sessions/", "owner"),
    ("Security events", "/settings/security/events/", "owner"),
    ("Email", "/settings/security/email/", "owner"),
    ("Secure your account", "/settings/security/secure/", "owner"),
]


class QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-") -> None:
        pass


class ToolMissing(RuntimeError):
    """A tool or the browser is not installed: `make quality` installs them."""


@dataclass
class Results:
    lighthouse: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    # Each page's failing audits (score under 0.9 and weighted), for the report.
    lighthouse_misses: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    pa11y: dict[str, list[dict]] = field(default_factory=dict)
    runs: dict[tuple[str, str], int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def chrome_path() -> str:
    path = os.environ.get("CHROME_PATH") or shutil.which("chromium") or ""
    if not path or not Path(path).exists():
        raise ToolMissing("no Chromium: install it (Debian: apt-get install chromium)")
    return path


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise ToolMissing(f"{name} is not installed: run npm ci")
    return str(path)


def tool_version(name: str) -> str:
    package = json.loads((ROOT / "node_modules" / name / "package.json").read_text())
    return package["version"]


def make_app(database: Path):
    from app import create_app
    from tools.inprocess import fresh_tables

    app = create_app(
        {
            "SPAREKEY_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        }
    )
    fresh_tables(app)
    # The app's JSON lines would bury the tools' own output.
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("sparekey", "sparekey.security", "sparekey.request", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return app


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"setting up the pages failed: {what}")


def prepare_browsers(base: str) -> dict[str, Browser]:
    """A visitor; the owner, signed in with saved codes and a new sheet waiting; someone half-way
    through "Forgot password?" (for the code entry page)."""
    visitor = Browser(base)
    visitor.get("/")
    owner = Browser(base)
    token = owner.token("/accounts/signup/")
    status = owner.post(
        "/accounts/signup/", {"csrf_token": token, "username": USERNAME, "password": PASSWORD}
    )[0]
    _expect(status == 302, f"sign-up answered {status}")
    # First codes: in use at once; type one back to finish, as a person would.
    _get_sheet(owner)
    html = owner.get(SAVED)[2]
    asked = re.search(r"Type code #(\d+) from your new sheet", html)
    codes = re.findall(r'<span class="code-value">(\d{4}) (\d{4})</span>', owner.get(SHEET)[2])
    _expect(asked is not None and len(codes) == 10, "no sheet to save")
    number = int(asked.group(1)) if asked else 1
    sheet = re.search(r'name="sheet" type="hidden" value="([^"]+)"', html)
    _expect(sheet is not None, "no sheet field")
    saved = owner.post(
        SAVED,
        {
            "csrf_token": csrf_from(html),
            "code": "".join(codes[number - 1]),
            "sheet": sheet.group(1) if sheet else "",
        },
    )[0]
    _expect(saved == 302, f"saving the sheet answered {saved}")
    # A new sheet waiting: the sheet page and Backup Codes' "Finish saving" card.
    _get_sheet(owner)
    # An authentication-app set-up under way: its page shows the key and the QR code.
    token = owner.token("/settings/security/two-factor/app/")
    owner.post(APP_SETUP, {"csrf_token": token, "start-submit": "1"})
    # Read the flashed notices now, so every tool's page is the page a person sees next.
    owner.get("/")
    recovering = Browser(base)
    recovering.ready_to_enter_code(USERNAME)
    return {"visitor": visitor, "owner": owner, "recovering": recovering}


def _get_sheet(owner: Browser) -> None:
    token = owner.token(CONFIRM)
    status = owner.post(CONFIRM, {"csrf_token": token, "password": PASSWORD})[0]
    _expect(status in (302, 303), f"Confirm answered {status}")


def headers_of(browser: Browser) -> dict[str, str]:
    cookie = browser.cookie_header()
    return {"Cookie": cookie} if cookie else {}


LIGHTHOUSE_ATTEMPTS = 3
LIGHTHOUSE_RUN_AGAIN = "Please run Lighthouse again"


def run_lighthouse(url: str, headers: dict[str, str], desktop: bool, out: Path) -> dict:
    command = [
        tool("lighthouse"),
        url,
        "--quiet",
        "--output=json",
        f"--output-path={out}",
        "--only-categories=" + ",".join(CATEGORIES),
        "--chrome-flags=--headless=new --no-sandbox --disable-dev-shm-usage",
        "--extra-headers=" + json.dumps(headers),
        "--max-wait-for-load=30000",
    ]
    if desktop:
        command.append("--preset=desktop")
    for attempt in range(1, LIGHTHOUSE_ATTEMPTS + 1):
        out.unlink(missing_ok=True)
        completed = subprocess.run(  # noqa: S603  # nosec B603: fixed arguments, our own URL
            command, capture_output=True, text=True, timeout=240, check=False
        )
        if completed.returncode == 0 and out.exists():
            return json.loads(out.read_text())
        # Lighthouse's own "Runtime error encountered ... Please run Lighthouse again" (a trace
        # the browser did not record, NO_NAVSTART and the like) says nothing about the page.
        again = LIGHTHOUSE_RUN_AGAIN in completed.stderr
        if not again or attempt == LIGHTHOUSE_ATTEMPTS:
            break
    raise RuntimeError(f"Lighthouse failed on {url}: {completed.stderr.strip()[-800:]}")


def lighthouse_figures(report: dict) -> tuple[dict[str, int], list[str]]:
    scores = {}
    misses = []
    for category in CATEGORIES:
        entry = report["categories"][category]
        score = entry.get("score")
        scores[category] = round(score * 100) if score is not None else 0
        for ref in entry["auditRefs"]:
            audit = report["audits"].get(ref["id"], {})
            score_of_audit = audit.get("score")
            if ref.get("weight", 0) > 0 and score_of_audit is not None and score_of_audit < 0.9:
                misses.append(f"{category}: {ref['id']} ({audit.get('title', '')})")
    return scores, misses


def run_pa11y(url: str, headers: dict[str, str], config_dir: Path) -> list[dict]:
    config = config_dir / "pa11y.json"
    config.write_text(
        json.dumps(
            {
                "chromeLaunchConfig": {
                    "executablePath": chrome_path(),
                    "args": ["--no-sandbox", "--disable-dev-shm-usage"],
                },
                "headers": headers,
                "runners": ["axe"],
                "standard": PA11Y_STANDARD,
                "rules": WCAG22_RULES,
                "timeout": 60000,
            }
        )
    )
    completed = subprocess.run(  # noqa: S603  # nosec B603: fixed arguments, our own URL
        [tool("pa11y"), "--config", str(config), "--reporter", "json", url],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    # pa11y exits 2 when it found issues: its JSON is on stdout either way.
    try:
        issues = json.loads(completed.stdout or "[]")
    except json.JSONDecodeError as error:
        raise RuntimeError(f"pa11y failed on {url}: {completed.stderr.strip()[-800:]}") from error
    if not isinstance(issues, list):
        raise RuntimeError(f"pa11y failed on {url}: {completed.stdout[-800:]}")
    return issues


def measure() -> Results:
    os.environ.setdefault("CHROME_PATH", chrome_path())
    os.environ.setdefault("PUPPETEER_EXECUTABLE_PATH", os.environ["CHROME_PATH"])
    os.environ.setdefault("PUPPETEER_SKIP_DOWNLOAD", "1")
    results = Results()
    with tempfile.TemporaryDirectory(prefix="sparekey-quality-") as scratch:
        work = Path(scratch)
        app = make_app(work / "quality.db")
        with running(app, request_handler=QuietRequestHandler) as base:
            browsers = prepare_browsers(base)
            for name, path, who in LIGHTHOUSE_PAGES:
                for size, desktop in (("phone", False), ("desktop", True)):
                    print(f"Lighthouse: {name} ({size})", flush=True)
                    runs = []
                    # Lighthouse's scores vary from run to run (its own advice: take the median
                    # of several). One run that meets every target stands; otherwise three, and
                    # each category's median counts.
                    while len(runs) < RUNS_WHEN_MISSED:
                        report = run_lighthouse(
                            base + path, headers_of(browsers[who]), desktop, work / "lh.json"
                        )
                        final = report.get("finalDisplayedUrl") or report.get("finalUrl") or ""
                        if not final.endswith(path):
                            results.problems.append(
                                f"Lighthouse: {name} ended at {final}, not {path}"
                            )
                        runs.append(lighthouse_figures(report))
                        if all(score >= TARGET for score in runs[0][0].values()):
                            break
                    scores = {
                        category: int(median(run[0][category] for run in runs))
                        for category in CATEGORIES
                    }
                    misses = sorted({miss for run in runs for miss in run[1]})
                    results.runs[(name, size)] = len(runs)
                    results.lighthouse[(name, size)] = scores
                    results.lighthouse_misses[(name, size)] = misses
                    for category, score in scores.items():
                        if score < TARGET:
                            results.problems.append(
                                f"Lighthouse: {name} ({size}) {CATEGORY_NAMES[category]} "
                                f"{score} < {TARGET}"
                            )
            for name, path, who in PA11Y_PAGES:
                print(f"pa11y: {name}", flush=True)
                issues = run_pa11y(base + path, headers_of(browsers[who]), work)
                results.pa11y[name] = issues
                errors = [issue for issue in issues if issue.get("type") == "error"]
                if errors:
                    results.problems.append(f"pa11y: {name} has {len(errors)} errors")
        with app.app_context():
            from extensions import db

            db.session.remove()
            db.engine.dispose()
    return results


def write_report(results: Results) -> None:
    lines = [
        "# Quality: Lighthouse and pa11y",
        "",
        "Written by `make quality` (tools/quality.py), which CI runs after the tests: the app on a",
        "fresh database, an account with saved backup codes and a new sheet waiting, each page",
        "loaded with that account's session cookie. Targets: every Lighthouse score at least "
        f"{TARGET}, 0 pa11y errors on every page. A missed target fails the run.",
        "",
        f"Last run: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; Lighthouse "
        f"{tool_version('lighthouse')}, pa11y {tool_version('pa11y')}, Chromium (Debian's).",
        "",
        "## Lighthouse",
        "",
        "Phone is Lighthouse's mobile emulation (with its simulated slow network and CPU); "
        "desktop is its desktop preset.",
        "",
        "A page whose first run meets every target shows that run; otherwise Lighthouse ran "
        f"{RUNS_WHEN_MISSED} times and each score is the median (Lighthouse's own advice on its "
        "run-to-run variance).",
        "",
        "| Page | Size | Runs | " + " | ".join(CATEGORY_NAMES[c] for c in CATEGORIES) + " |",
        "|---|---|---|" + "---|" * len(CATEGORIES),
    ]
    for (name, size), scores in results.lighthouse.items():
        cells = [
            f"{scores[c]}" if scores[c] >= TARGET else f"**{scores[c]}** (under {TARGET})"
            for c in CATEGORIES
        ]
        runs = results.runs.get((name, size), 1)
        lines.append(f"| {name} | {size} | {runs} | " + " | ".join(cells) + " |")
    misses = {key: found for key, found in results.lighthouse_misses.items() if found}
    if misses:
        lines += ["", "Audits that cost points (score under 0.9):", ""]
        for (name, size), found in misses.items():
            lines.append(f"- {name} ({size}): " + "; ".join(found))
    lines += [
        "",
        "## pa11y",
        "",
        f"Runner axe, standard {PA11Y_STANDARD} (pa11y names no WCAG 2.2 standard: WCAG2AA runs "
        "axe's WCAG 2.0 and 2.1 A and AA rules and its best practices), plus axe's WCAG 2.2 AA "
        f"rule{'s' if len(WCAG22_RULES) != 1 else ''} {', '.join(WCAG22_RULES)}.",
        "",
        "| Page | Errors | Warnings | Notices |",
        "|---|---|---|---|",
    ]
    for name, issues in results.pa11y.items():
        counts = [sum(1 for i in issues if i.get("type") == kind) for kind in ("error", "warning")]
        notices = sum(1 for i in issues if i.get("type") == "notice")
        error_cell = f"**{counts[0]}**" if counts[0] else "0"
        lines.append(f"| {name} | {error_cell} | {counts[1]} | {notices} |")
    errors = [
        (name, issue)
        for name, issues in results.pa11y.items()
        for issue in issues
        if issue.get("type") == "error"
    ]
    if errors:
        lines += ["", "Errors:", ""]
        for name, issue in errors:
            lines.append(f"- {name}: {issue.get('code')} at `{issue.get('selector')}`")
    lines += ["", "## Result", ""]
    if results.problems:
        lines += ["Targets missed:", ""] + [f"- {problem}" for problem in results.problems]
    else:
        lines.append("Every target met.")
    REPORT.write_text("\n".join(lines) + "\n")


def main() -> int:
    try:
        results = measure()
    except ToolMissing as missing:
        print(f"quality: {missing}", file=sys.stderr)
        return 2
    write_report(results)
    print(f"Figures written to {REPORT.relative_to(ROOT)}")
    for problem in results.problems:
        print(f"MISSED: {problem}", file=sys.stderr)
    return 1 if results.problems else 0


if __name__ == "__main__":
    sys.exit(main())
