"""`make security`: bandit on the project's code, pip-audit on the installed pins, and sqlmap
against the log-in, sign-up and recovery forms of a local server. Exits non-zero on a finding.

The outcome of each tool is also written to test-artifacts/security-scan.json, which
`python -m tools.checklist_report` shows in docs/security.md (items 73 and 74).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "test-artifacts" / "security-scan.json"
CODE = ["app.py", "config.py", "models.py", "extensions.py", "commands.py", "serve_dev.py"]
CODE += ["logs.py"]
CODE += ["gunicorn.conf.py", "clock.py"]
CODE += ["security", "blueprints"]
RESET = "/accounts/password/reset/"
CODE_ENTRY = "/accounts/password/reset/backup-code/"
# Each form, and the field sqlmap must have tried for its answer to count.
FORMS = {
    "/accounts/login/": "identifier",
    "/accounts/signup/": "username",
    RESET: "identifier",
    # Only reachable with a session that went through RESET first (see `code_entry_cookie`).
    CODE_ENTRY: "code",
}
SQLMAP_SECONDS_PER_FORM = 240

OK, FAILED, NOT_AUDITED = "ok", "failed", "not audited"


@dataclass(frozen=True)
class Verdict:
    status: str  # OK, FAILED or NOT_AUDITED
    summary: str  # one line

    @property
    def passed(self) -> bool:
        return self.status != FAILED


# The final line of a traceback when pip-audit could not talk to PyPI at all: refused, no DNS,
# no route, proxy down, timeout (pip-audit turns a connect timeout into a bare ConnectionError).
NETWORK_FAILURE = re.compile(
    r"ConnectionError|ConnectTimeout|ReadTimeout|Timeout|ProxyError|SSLError"
    r"|Max retries exceeded|Failed to establish a new connection|Connection refused"
    r"|Temporary failure in name resolution|Name or service not known|Failed to resolve"
    r"|Network is unreachable|No route to host|timed out|Could not connect to PyPI",
)
# From the most to the least telling, for the one-line message.
NETWORK_REASONS = (
    "Connection refused",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "No route to host",
    "timed out",
    "Could not connect to PyPI's vulnerability feed",
    "Unable to connect to proxy",
)


def judge_pip_audit(returncode: int, stdout: str, stderr: str) -> Verdict:
    """What one pip-audit run means: a known vulnerability or any other error fails; an index
    that answers "not found" or cannot be reached at all is reported, not failed."""
    output = stdout + "\n" + stderr
    found = re.search(r"^Found \d+ known vulnerabilit.*$", output, re.M)
    if found:
        return Verdict(FAILED, f"pip-audit: {found.group(0)}")
    if returncode != 0:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit status {returncode}, no message"
        if "Traceback (most recent call last)" in stderr and NETWORK_FAILURE.search(last):
            reason = next((r for r in NETWORK_REASONS if r in last), "no connection")
            return Verdict(
                NOT_AUDITED,
                "pip-audit: nothing could be audited: the package index (pypi.org) is not "
                f"reachable from this machine ({reason}).",
            )
        return Verdict(FAILED, f"pip-audit failed: {last[:300]}")
    skipped = output.count("could not be audited")
    if skipped:
        return Verdict(
            NOT_AUDITED,
            f"pip-audit: {skipped} packages could not be audited: the vulnerability index does "
            "not know them or is not reachable from this machine. None of the others has a "
            "known vulnerability.",
        )
    return Verdict(OK, "pip-audit: no known vulnerabilities in the installed packages.")


def bandit() -> Verdict:
    print("== bandit", flush=True)
    result = subprocess.run([BIN / "bandit", "-q", "-r", *CODE], cwd=ROOT, check=False)  # noqa: S603
    if result.returncode == 0:
        return Verdict(OK, "bandit: no issues in the project's code.")
    return Verdict(FAILED, f"bandit: issues found (exit status {result.returncode}).")


def pip_audit() -> Verdict:
    """Audit what is installed (the pinned requirements); an unreachable index is not a finding."""
    print("== pip-audit", flush=True)
    result = subprocess.run(  # noqa: S603
        [BIN / "pip-audit", "--progress-spinner", "off", "--skip-editable"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    verdict = judge_pip_audit(result.returncode, result.stdout, result.stderr)
    if verdict.status == FAILED:
        print((result.stdout + result.stderr).strip())
    print(verdict.summary)
    return verdict


def sqlmap() -> Verdict:
    """Serve the app on a throwaway database, then let sqlmap try every field of each form.

    The per-account back-off and cap are lifted for the scan: otherwise "Too many failed
    attempts" appearing part-way through changes the answers sqlmap compares, and it reports a
    blind injection that is only the throttle (and after the cap no code is checked at all).
    """
    from app import create_app
    from commands import demo_account
    from extensions import db
    from tools.live import running

    print("== sqlmap", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "SPAREKEY_ENV": "test",
                "SECRET_KEY": secrets.token_urlsafe(32),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/scan.db",
                "FAILURES_BEFORE_BACKOFF": 10**9,
                "MAX_CONSECUTIVE_FAILURES": 10**9,
            }
        )
        with app.app_context():
            db.create_all()
            username = demo_account().username
        try:
            with running(app) as base:
                verdicts = {}
                for form, field in FORMS.items():
                    extra = []
                    if form == CODE_ENTRY:
                        # The code is looked up for the name typed on RESET, kept in the session.
                        extra = ["--cookie", code_entry_cookie(base, username)]
                    verdicts[form] = scan_form(base + form, field, Path(folder), extra)
        finally:
            with app.app_context():
                db.engine.dispose()
    bad = {form: verdict for form, verdict in verdicts.items() if verdict != "not injectable"}
    if bad:
        listed = ", ".join(f"{form} {verdict}" for form, verdict in bad.items())
        return Verdict(FAILED, f"sqlmap: {listed}.")
    forms = ", ".join(FORMS)
    return Verdict(OK, f"sqlmap: no injectable field in the {len(verdicts)} forms {forms}.")


def code_entry_cookie(base: str, username: str) -> str:
    """A session that typed `username` on "Forgot password?" and chose "Use a backup code"."""
    from tools.live import Browser

    browser = Browser(base)
    browser.ready_to_enter_code(username)
    return browser.cookie_header()


def scan_form(url: str, field: str, folder: Path, extra: list[str]) -> str:
    """sqlmap on every field of the form at `url`: "not injectable", "INJECTABLE", or why not
    known. `field` must be among the parameters it tested (else it scanned some other page)."""
    command = [
        BIN / "sqlmap", "-u", url, "--forms", "--batch", "--level=2", "--risk=1",
        "--timeout=10", "--retries=1", "--time-sec=2",
        "--csrf-token=csrf_token", "--output-dir", str(folder / "sqlmap"),
        "--disable-coloring", *extra,
    ]  # fmt: skip
    try:
        result = subprocess.run(  # noqa: S603
            command,
            capture_output=True,
            text=True,
            timeout=SQLMAP_SECONDS_PER_FORM,
            check=False,
        )
    except subprocess.TimeoutExpired:
        print(f"{url}: sqlmap did not finish in {SQLMAP_SECONDS_PER_FORM} s")
        return "timed out"
    output = result.stdout
    injectable = re.findall(r"^.*(?:is vulnerable|appears to be .*injectable).*$", output, re.M)
    tested = sorted(set(re.findall(r"(?:POST|GET) parameter '([^']+)'", output)))
    done = "do not appear to be injectable" in output and field in tested
    verdict = "INJECTABLE" if injectable else ("not injectable" if done else "inconclusive")
    print(f"{url}: {verdict} (parameters tested: {', '.join(tested) or 'none'})")
    for line in injectable:
        print("   ", line)
    if not injectable and not done:
        print(output[-2000:])
    return verdict


def write_results(verdicts: dict[str, Verdict]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    record = {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "tools": {
            name: {"status": verdict.status, "summary": verdict.summary}
            for name, verdict in verdicts.items()
        },
    }
    RESULTS.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def main() -> int:
    verdicts: dict[str, Verdict] = {}
    try:
        for name, tool in (("bandit", bandit), ("pip-audit", pip_audit), ("sqlmap", sqlmap)):
            verdicts[name] = tool()
    finally:
        write_results(verdicts)
    for name, verdict in verdicts.items():
        print(f"{name}: {verdict.status if verdict.passed else 'FAILED'}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if all(verdict.passed for verdict in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
