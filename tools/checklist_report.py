"""Write docs/security.md: every checklist item, whether it applies, the tests that prove it, and
how they fared in this run.

Tests name their items in their docstrings ("Checklist 16", "Checklist 21/64"). Run with
`python -m tools.checklist_report`; it runs those tests itself and writes the table. Items 73
and 74 are proved by `python -m tools.security_scan` (sqlmap, pip-audit): their "Last run" is
read from the result file that scan writes, when there is one.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

from tools.security_scan import FAILED, RESULTS

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "security.md"
RANK = {"passed": 0, "skipped": 1, "failed": 2}
NAMED = re.compile(r"[Cc]hecklist ((?:\d+)(?:\s*/\s*\d+)*)")

# The requirements of the team's security checklist (section 2), by number.
ITEMS = {
    1: "Codes come from a CSPRNG.",
    2: "Each code meets the chosen entropy floor (never below 20 bits; DESIGN.md chooses 8 digits).",
    3: "A set contains N distinct codes (e.g. N = 10) and the count is fixed.",
    4: "Generating codes requires re-entering the password in the same request.",
    5: "The re-authentication form is rate limited.",
    6: "Codes are shown once, only in the POST response; never re-displayed.",
    7: "The page that shows codes is not cacheable.",
    8: "Regenerating replaces the whole set atomically; all old codes stop working.",
    9: 'Concurrent double-submit of "generate" leaves exactly one valid set, and it is one that was displayed.',
    10: "Disabling 2FA deletes the codes.",
    11: "No plaintext or reversible copy of any code in the database.",
    12: "Hash scheme matches entropy.",
    13: "Optional pepper (keyed hash) is kept outside the database.",
    14: "Passwords and codes never appear in logs or URLs.",
    15: "A code succeeds once only.",
    16: "Consumption is atomic under concurrency (no double use).",
    17: "A code is only valid for the account it was issued to.",
    18: "Input is normalized deliberately and bounded.",
    19: "Comparison does not leak via timing.",
    20: 'The amount of hashing work per attempt is fixed (no oracle for "user exists" or "how many codes left").',
    21: "The code step is reachable only after the password step, and the pending state is bounded.",
    22: "After a successful code login the user is told how many codes remain and the use is recorded.",
    23: "Per-account limit on wrong backup codes, shared by every entry point.",
    24: "Restarting the flow or discarding cookies does not reset the counter.",
    25: "Forged client-IP headers do not create new buckets.",
    26: "A success on one account does not clear failures on another.",
    27: "The counter is race-free.",
    28: "Rate-limit keys are normalized.",
    29: "Throttling the backup-code factor does not lock the victim out of normal login.",
    30: "Password login is throttled per account and per IP (spraying).",
    31: 'Sign-up and "Forgot password?" submissions are throttled.',
    32: "Same response for existing and non-existing usernames.",
    33: "Same timing for those cases.",
    34: "Recovery never yields a session that skips a required factor.",
    35: 'The "set new password" grant is single-use, short-lived and bound to the user.',
    36: "The new password follows the normal policy (items 45–51).",
    37: "After recovery every other session is terminated.",
    38: "The user is notified of recovery, code use and code regeneration.",
    39: "No password hints or security questions anywhere.",
    40: "Generic failure: same text, status and redirect for unknown user / wrong password / disabled account.",
    41: "Unknown usernames cost one bcrypt verification like known ones.",
    42: "Login form is CSRF-protected.",
    43: "`next` cannot redirect off-site.",
    44: "Over-long passwords never cause a 500.",
    45: "Minimum length, counted in Unicode code points.",
    46: "Max length >= 64 characters; no silent truncation.",
    47: "No composition rules.",
    48: "Blocklist check with reason.",
    49: "Any printable/Unicode character and spaces allowed; NFKC before hashing.",
    50: "Paste and password managers allowed.",
    51: "Password change requires the current password.",
    52: "Stored with bcrypt cost >= 10 and unique salt.",
    53: "No periodic password expiry.",
    54: "Cookie attributes.",
    55: "Session identifiers/keys are strong.",
    56: "A new session on login (and on 2FA completion).",
    57: "Logout invalidates the session on the server.",
    58: "Logout is POST with CSRF.",
    59: "Idle and absolute timeouts.",
    60: "Re-authentication for sensitive actions.",
    61: "Other sessions end after password change or 2FA change.",
    62: "Remember-me (if offered) is revocable.",
    63: "No session IDs or codes in URLs.",
    64: "Settings / 2FA endpoints require a full login.",
    65: "No IDOR on 2FA management.",
    66: "CSRF on every state-changing POST.",
    67: "GET never changes state.",
    68: "Not frameable.",
    69: "Only used HTTP methods; no TRACE.",
    70: "Security headers on every response.",
    71: "Debug off; generic errors; no version banners.",
    72: "Output is escaped (usernames are user-controlled and displayed).",
    73: "No SQL injection.",
    74: "Dependencies checked for known vulnerabilities.",
    75: "Authentication events are logged without secrets.",
    76: "No 5xx under concurrent auth traffic.",
    77: "Bounded request sizes and field lengths.",
    78: "Cheap checks before expensive hashing.",
    79: '"All codes used" is handled.',
}

# Items proved by something other than a test in tests/, or that do not apply, and why.
OTHER_PROOF = {
    10: "Differs by decision: turning the app off keeps the backup codes, which are also the "
    "way back in without a password (docs/decisions.md). Tested as such in test_two_factor.py.",
    33: "Hashing work is proved equal by counting bcrypt calls; wall-clock timing belongs to "
    "bench/, not to assertions on a shared machine.",
    73: "Only statements SQLAlchemy builds, with bound parameters, reach the database (the "
    "session lookup too: compiled once, sent by the driver); `make security` runs sqlmap "
    "against the log-in, sign-up and recovery (name and backup-code) forms of a running server.",
    74: "`make security` runs pip-audit on the pinned requirements.",
}

# Items the design meets differently on purpose, and how; their tests prove what is built.
DIFFERS = {
    6: "Differs by decision (DESIGN: pending until saved replaces show once): the codes are "
    "shown on a GET page after the password POST, to the session that proved the password, for "
    "at most 30 minutes and until the sheet is saved; never again after that.",
    11: "Differs by decision, for a sheet being saved only: its codes are kept encrypted "
    "(Fernet, key outside the database) for at most 30 minutes, bound to the session, and "
    "deleted when saved. The set itself is stored only as bcrypt digests.",
}

# Items whose "Last run" is the outcome of a tool of `make security`'s scan.
SCANNED_BY = {73: "sqlmap", 74: "pip-audit"}


def scan_results() -> dict | None:
    """What the last `python -m tools.security_scan` wrote, or None when there is nothing."""
    try:
        return json.loads(RESULTS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def scan_outcome(scan: dict | None, tool: str) -> tuple[str, bool]:
    """The "Last run" cell of an item proved by `tool`, and whether that outcome is a failure."""
    result = (scan or {}).get("tools", {}).get(tool)
    if not result:
        return f"no {tool} result: this report was written without `make security`'s scan", False
    status, summary = result.get("status", "unknown"), result.get("summary", "")
    cell = f"{status}, {scan.get('date', 'undated')}: {summary}".replace("|", "\\|")
    return cell, status == FAILED


def tests_by_item() -> dict[int, list[str]]:
    """Checklist number → test node ids ("tests/test_x.py::test_y") that name it."""
    found: dict[int, list[str]] = defaultdict(list)
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                docstring = ast.get_docstring(node) or ""
                for match in NAMED.finditer(docstring):
                    for number in re.split(r"\s*/\s*", match.group(1)):
                        node_id = f"{path.relative_to(ROOT)}::{node.name}"
                        if node_id not in found[int(number)]:
                            found[int(number)].append(node_id)
    return found


def run(node_ids: list[str]) -> dict[str, str]:
    """Run the tests; node id → "passed", "failed" or "skipped" (parametrized cases combined)."""
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "junit.xml"
        subprocess.run(  # noqa: S603 -- our own interpreter running our own tests
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={junit}",
                *node_ids,
            ],
            cwd=ROOT,
            check=False,
        )
        outcomes: dict[str, str] = {}
        for case in ElementTree.parse(junit).getroot().iter("testcase"):
            module = case.get("classname", "").replace(".", "/") + ".py"
            node_id = f"{module}::{case.get('name', '').split('[')[0]}"
            if case.find("failure") is not None or case.find("error") is not None:
                outcome = "failed"
            elif case.find("skipped") is not None:
                outcome = "skipped"
            else:
                outcome = "passed"
            # A parametrized test is as good as its worst case.
            outcomes[node_id] = max(outcomes.get(node_id, outcome), outcome, key=RANK.get)
        return outcomes


def main() -> int:
    found = tests_by_item()
    node_ids = sorted({node_id for ids in found.values() for node_id in ids})
    outcomes = run(node_ids)
    scan = scan_results()
    lines = [
        "# Security checklist: what applies and what proves it",
        "",
        "Written by `python -m tools.checklist_report` (run by `make security`) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Each test names its item in its docstring; "
        '"Last run" is that test\'s result in the run that wrote this page; for items 73 and 74 '
        "it is the outcome of `make security`'s scan (`tools/security_scan.py`) before it.",
        "",
        "| # | Requirement | Applies | Proved by | Last run |",
        "|---|---|---|---|---|",
    ]
    failed = 0
    for number, requirement in ITEMS.items():
        ids = found.get(number, [])
        results = [outcomes.get(node_id, "not run") for node_id in ids]
        failed += results.count("failed") + results.count("not run")
        if ids:
            proof = "<br>".join(f"`{node_id}`" for node_id in ids)
            last = "passed" if set(results) == {"passed"} else ", ".join(sorted(set(results)))
            applies = "yes"
            if number in DIFFERS:
                proof, applies = f"{DIFFERS[number]}<br>{proof}", "differs"
        else:
            proof = OTHER_PROOF.get(number, "**no test yet**")
            last = "n/a"
            if number in SCANNED_BY:
                last, scan_failed = scan_outcome(scan, SCANNED_BY[number])
                failed += scan_failed
            applies = "differs" if number == 10 else "yes"
        lines.append(f"| {number} | {requirement} | {applies} | {proof} | {last} |")
    missing = [n for n in ITEMS if n not in found and n not in OTHER_PROOF]
    lines += ["", f"Items without a test or other proof: {', '.join(map(str, missing)) or 'none'}."]
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {REPORT.relative_to(ROOT)}: {len(node_ids)} tests, {failed} not passing")
    return 1 if failed or missing else 0


if __name__ == "__main__":
    sys.exit(main())
