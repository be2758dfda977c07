"""`make security`: bandit on the project's code, pip-audit on the installed pins, and sqlmap
against the log-in, sign-up and recovery forms of a local server. Exits non-zero on a finding."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CODE = ["app.py", "config.py", "models.py", "extensions.py", "commands.py", "serve_dev.py"]
CODE += ["security", "blueprints"]
FORMS = ["/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]
SQLMAP_SECONDS_PER_FORM = 240


def bandit() -> bool:
    print("== bandit", flush=True)
    result = subprocess.run([BIN / "bandit", "-q", "-r", *CODE], cwd=ROOT, check=False)  # noqa: S603
    return result.returncode == 0


def pip_audit() -> bool:
    """Audit what is installed (the pinned requirements); an unreachable index is not a finding."""
    print("== pip-audit", flush=True)
    result = subprocess.run(  # noqa: S603
        [BIN / "pip-audit", "--progress-spinner", "off", "--skip-editable"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    unreachable = output.count("could not be audited")
    vulnerable = re.search(r"Found \d+ known vulnerabilit", output)
    if vulnerable or (result.returncode != 0 and not unreachable):
        print(output.strip())
        return False
    if unreachable:
        print(
            f"pip-audit: {unreachable} packages could not be audited: the vulnerability index "
            "is not reachable from this machine. Nothing known-vulnerable was found in the rest."
        )
    else:
        print("pip-audit: no known vulnerabilities in the installed packages.")
    return True


def sqlmap() -> bool:
    """Serve the app on a throwaway database, then let sqlmap try every field of each form.

    The per-account back-off is lifted for the scan: otherwise "Too many failed attempts"
    appearing part-way through changes the answers sqlmap compares, and it reports a blind
    injection that is only the throttle.
    """
    from app import create_app
    from commands import demo_account
    from extensions import db
    from tests.live import running

    print("== sqlmap", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "SPAREKEY_ENV": "test",
                "SECRET_KEY": secrets.token_urlsafe(32),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/scan.db",
                "FAILURES_BEFORE_BACKOFF": 10**9,
            }
        )
        with app.app_context():
            db.create_all()
            demo_account()
        try:
            with running(app) as base:
                return all(scan_form(base + form, Path(folder)) for form in FORMS)
        finally:
            with app.app_context():
                db.engine.dispose()


def scan_form(url: str, folder: Path) -> bool:
    command = [
        BIN / "sqlmap", "-u", url, "--forms", "--batch", "--level=2", "--risk=1",
        "--timeout=10", "--retries=1", "--time-sec=2",
        "--csrf-token=csrf_token", "--output-dir", str(folder / "sqlmap"),
        "--disable-coloring",
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
        return False
    output = result.stdout
    injectable = re.findall(r"^.*(?:is vulnerable|appears to be .*injectable).*$", output, re.M)
    tested = "do not appear to be injectable" in output
    verdict = "INJECTABLE" if injectable else ("not injectable" if tested else "inconclusive")
    print(f"{url}: {verdict}")
    for line in injectable:
        print("   ", line)
    if not injectable and not tested:
        print(output[-2000:])
    return not injectable and tested


def main() -> int:
    results = {"bandit": bandit(), "pip-audit": pip_audit(), "sqlmap": sqlmap()}
    for name, ok in results.items():
        print(f"{name}: {'ok' if ok else 'FAILED'}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
