"""Benchmark: "Try the demo" (a sandbox account made and signed in) next to a sign-up.

Per request, in-process (Flask's test client, no HTTP server): SQL statements, bcrypt derivations
and time, the two interleaved request by request. Then sandboxes per second under gunicorn
(2 workers x 4 threads, 8 clients at once), next to sign-ups per second, in interleaved rounds.
Production bcrypt cost (12). The database is `BENCH_DATABASE_URL`'s server with the database
`sparekey_bench_demo` (created if missing, tables made afresh), or SQLite when PostgreSQL is not
reachable.

Writes its section of bench/RESULTS.md (replacing an earlier one) unless `--print` is given:
`python -m bench.demo_sandboxes`.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.code_timing import Meter, write  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## 8. “Try the demo”: making a sandbox vs a sign-up"
DATABASE = "sparekey_bench_demo"
REQUESTS = 20
ROUND_SECONDS = 8
ROUNDS = 3
CLIENTS = 8


def database() -> tuple[str, str, Path]:
    from bench.run import postgres_url
    from config import normalise_database_url

    workdir = Path(tempfile.mkdtemp(prefix="sparekey-demo-bench-"))
    base = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/sparekey_bench"
    )
    os.environ["BENCH_DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + DATABASE
    postgres, note = postgres_url()
    if postgres:
        return (
            normalise_database_url(postgres),
            f"PostgreSQL ({postgres.rsplit('@', 1)[-1]})",
            workdir,
        )
    return f"sqlite:///{workdir / 'demo.db'}", f"SQLite ({note})", workdir


SETTINGS = {
    "PASSWORD_BCRYPT_COST": 12,
    "BACKUP_CODE_BCRYPT_COST": 10,
    "RATELIMIT_ENABLED": False,
    "WTF_CSRF_ENABLED": False,
    "DEMO_MAX_ACCOUNTS": 10**9,
}


def make_app(url: str):
    from app import create_app
    from config import Config, engine_options
    from tools.inprocess import fresh_tables

    app = create_app(
        {
            "SPAREKEY_ENV": "development",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url, Config.SQLALCHEMY_ENGINE_OPTIONS),
            "MAIL_BACKEND": "locmem",
            **SETTINGS,
        }
    )
    fresh_tables(app)
    return app


def in_process(app) -> dict[str, dict[str, float]]:
    """Each kind REQUESTS times, interleaved; a fresh browser (test client) for every request."""
    from extensions import db

    meter = Meter()
    with app.app_context():
        uninstall = meter.install(db.engine)
    found: dict[str, dict[str, list[float]]] = {
        kind: {"ms": [], "statements": [], "derivations": []} for kind in ("demo", "signup")
    }
    try:
        for n in range(REQUESTS + 2):
            for kind in ("demo", "signup"):
                client = app.test_client()
                meter.reset()
                started = time.perf_counter()
                if kind == "demo":
                    response = client.post("/accounts/demo/start/")
                else:
                    name = f"bench_{secrets.token_hex(6)}"
                    response = client.post(
                        "/accounts/signup/",
                        data={"username": name, "password": f"bench pass phrase {name}"},
                    )
                elapsed = time.perf_counter() - started
                if response.status_code != 302:
                    raise RuntimeError(f"{kind}: {response.status_code}")
                if n < 2:
                    continue  # warm-up
                found[kind]["ms"].append(elapsed * 1000)
                found[kind]["statements"].append(meter.statements)
                found[kind]["derivations"].append(meter.derivations)
    finally:
        uninstall()
    return {
        kind: {
            "ms": statistics.median(values["ms"]),
            "ms_low": min(values["ms"]),
            "ms_high": max(values["ms"]),
            "statements": statistics.median(values["statements"]),
            "derivations": statistics.median(values["derivations"]),
        }
        for kind, values in found.items()
    }


def _press(base: str, kind: str) -> bool:
    if kind == "demo":
        body = b""
        path = "/accounts/demo/start/"
    else:
        name = f"bench_{secrets.token_hex(6)}"
        body = urllib.parse.urlencode({"username": name, "password": f"bench pass {name}"}).encode()
        path = "/accounts/signup/"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect())
    try:
        # An http:// URL from gunicorn's own log line.
        request = urllib.request.Request(base + path, data=body, method="POST")  # noqa: S310
        opener.open(request, timeout=30)
    except urllib.error.HTTPError as error:
        return error.code == 302
    return False


def rate(base: str, kind: str, seconds: float) -> float:
    """Accounts made per second by CLIENTS clients pressing at once for `seconds`."""
    done = [0] * CLIENTS
    failed = [0] * CLIENTS
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        while time.monotonic() < stop:
            if _press(base, kind):
                done[index] += 1
            else:
                failed[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if sum(failed):
        raise RuntimeError(f"{kind}: {sum(failed)} requests were not a 302")
    return sum(done) / (time.monotonic() - started)


def under_gunicorn(url: str, workdir: Path) -> dict[str, list[float]]:
    import tools.gunicorn as launcher

    env = {
        **os.environ,
        "SPAREKEY_ENV": "development",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://"),
        "MAIL_BACKEND": "locmem",
    }
    env.pop("RATELIMIT_STORAGE_URI", None)
    spec = f"app:create_app({SETTINGS!r})"
    rates: dict[str, list[float]] = {"demo": [], "signup": []}
    with launcher.gunicorn(workdir, env, 2, spec) as base:
        rate(base, "demo", 2)  # warm-up
        for _ in range(ROUNDS):
            for kind in ("demo", "signup"):
                rates[kind].append(rate(base, kind, ROUND_SECONDS))
    return rates


def section(
    note: str, found: dict, rates: dict, started: float, command: str, load_before: str
) -> str:
    demo, signup = found["demo"], found["signup"]

    def spread(values: list[float]) -> str:
        middle = statistics.median(values)
        return f"{(max(values) - min(values)) / middle * 100:.0f} %" if middle else "-"

    demo_rate, signup_rate = statistics.median(rates["demo"]), statistics.median(rates["signup"])
    lines = [
        HEADING,
        "",
        f"Run by {command} on {note}, bcrypt cost 12, {time.time() - started:.0f} s. "
        "A sandbox is made by one press (`POST /accounts/demo/start/`: the account with its "
        "generated password, the demo profile, its first session, two events, one transaction); "
        "a sign-up is the form's POST (account, first session, two events). Both are signed in "
        "by the same request.",
        "",
        "| Per request, in-process | Try the demo | Sign-up | Demo ÷ sign-up |",
        "|---|---|---|---|",
        f"| SQL statements (median) | {demo['statements']:.0f} | {signup['statements']:.0f} "
        f"| {demo['statements'] / signup['statements']:.2f} |",
        f"| bcrypt derivations | {demo['derivations']:.0f} | {signup['derivations']:.0f} | |",
        f"| Time (median of {REQUESTS}; fastest-slowest) | {demo['ms']:.0f} ms "
        f"({demo['ms_low']:.0f}-{demo['ms_high']:.0f}) | {signup['ms']:.0f} ms "
        f"({signup['ms_low']:.0f}-{signup['ms_high']:.0f}) | {demo['ms'] / signup['ms']:.2f} |",
        "",
        f"Under gunicorn (2 workers x 4 threads), {CLIENTS} clients pressing at once, "
        f"{ROUNDS} interleaved rounds of {ROUND_SECONDS} s (median; spread = (max - min) / "
        "median):",
        "",
        "| | Accounts made per second | Spread | Rounds |",
        "|---|---|---|---|",
        f"| Try the demo | **{demo_rate:.1f}** | {spread(rates['demo'])} | "
        + ", ".join(f"{r:.1f}" for r in rates["demo"])
        + " |",
        f"| Sign-up | {signup_rate:.1f} | {spread(rates['signup'])} | "
        + ", ".join(f"{r:.1f}" for r in rates["signup"])
        + " |",
        f"| Demo ÷ sign-up | {demo_rate / signup_rate:.2f} | | |",
        "",
        "Both are bound by the one bcrypt derivation of the new password (cost 12): at the "
        f"in-process time above, this machine's {os.cpu_count()} cores could make at most about "
        f"{(os.cpu_count() or 1) * 1000 / demo['ms']:.1f} a second whatever else the request "
        f"does; the load average was {load_before} at the start and "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} at the end (other work on the "
        "machine lowers the rates). The cap (`DEMO_MAX_ACCOUNTS`, default 1,000) is counted "
        "in the same transaction, one `count(*)` over an indexed column; at the cap the "
        "sandboxes that are over are pruned first.",
    ]
    return "\n".join(lines)


def demo_section(command: str) -> str:
    started = time.time()
    load_before = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    url, note, workdir = database()
    found = in_process(make_app(url))
    rates = under_gunicorn(url, workdir)
    return section(note, found, rates, started, command, load_before)


def main() -> None:
    text = demo_section("`python -m bench.demo_sandboxes`")
    print(text)
    if "--print" not in sys.argv:
        write(text, HEADING)
        print(f"Wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
