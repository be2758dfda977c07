"""`make bench`: Sparekey against the peers' way, and against its own server's ceiling.

Every figure is a ratio of two measurements taken in the same run on the same machine, written
to bench/RESULTS.md with the CPU count and the date. Nothing here asserts a time: a target that
does not hold is written down with what the run shows about its cause. Section 7 is
bench/code_timing.py's (a difference of medians, not a ratio); the whole file is rewritten, so
it runs here too, and `python -m bench.code_timing` still replaces that section alone.

Environment: BENCH_DATABASE_URL (default: database `sparekey_bench` on the local PostgreSQL,
created if missing, never the tests' own database, whose tables every section drops; SQLite in
a temporary directory when PostgreSQL is unreachable), BENCH_SECONDS (length of each load run,
default 4).
"""

from __future__ import annotations

import os
import platform
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import code_timing, load  # noqa: E402
from bench.bench_app import add_bare_route  # noqa: E402
from tools.gunicorn import environment, gunicorn  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/sparekey_bench"
PASSWORD = "purple elephant sunrise"
PASSWORD_COST = 12
CODE_COST = 10
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
ROUNDS = 2
BACKUP_CODES_PAGE = "/settings/security/two-factor/backup-codes/"
# How long a double-spend client waits for its answer: all 1,000 are queued at once, and on a
# busy machine the last ones wait longer than an ordinary client would.
SUBMIT_TIMEOUT = 300


# --- set-up ------------------------------------------------------------------------------------


def postgres_url() -> tuple[str | None, str]:
    """The PostgreSQL URL to use (creating the bench database if needed) and a note."""
    import psycopg

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_POSTGRES)
    if not url.startswith(("postgres://", "postgresql://")):
        return None, f"BENCH_DATABASE_URL is not PostgreSQL ({url.split(':')[0]})"
    try:
        psycopg.connect(url, connect_timeout=3).close()
        return url, "PostgreSQL"
    except psycopg.OperationalError as error:
        if "does not exist" not in str(error):
            return None, f"PostgreSQL unreachable: {str(error).strip().splitlines()[0]}"
    server, name = url.rsplit("/", 1)
    try:
        with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')  # our own fixed name
        return url, "PostgreSQL"
    except psycopg.Error as error:
        return None, f"PostgreSQL unreachable: {str(error).strip().splitlines()[0]}"


@dataclass
class Bench:
    workdir: Path
    database_note: str
    postgres: str | None
    env: dict
    sections: list[str] = field(default_factory=list)
    load_start: float = field(default_factory=lambda: os.getloadavg()[0])

    def app(self):
        from app import create_app

        return create_app({"RATELIMIT_ENABLED": False})


def reset_database(app) -> None:
    """Empty tables (the tests' own reset), then close the pool before the server starts."""
    from extensions import db
    from tools.inprocess import fresh_tables

    fresh_tables(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def keys_of(app):
    """The app's key ring (pepper and costs); use inside an app context."""
    from blueprints.context import app_context_of

    return app_context_of(app).keys


def make_users(app, names: list[str], codes: bool = True) -> dict[str, list[str]]:
    """Accounts with the bench password (one bcrypt hash shared) and, optionally, a code set in
    use (as the tests make them: `register_account`, then `replace_code_set`)."""
    from blueprints.context import app_context_of
    from extensions import db
    from models import User
    from security.backup_codes import replace_code_set
    from security.signing_in import register_account

    made: dict[str, list[str]] = {}
    with app.app_context():
        ctx = app_context_of(app)
        first = register_account(ctx, names[0], PASSWORD)
        if not isinstance(first, User):
            raise RuntimeError(f"could not make {names[0]}: {first}")
        for name in names[1:]:
            db.session.add(
                User(username=name, password_hash=first.password_hash, display_name=name)
            )
        db.session.commit()
        for name in names:
            user_id = db.session.query(User.id).filter_by(username=name).scalar()
            made[name] = replace_code_set(ctx.db, ctx.keys, user_id).codes if codes else []
            ctx.db.commit()
        db.session.remove()
    return made


def log_in(base: str, username: str):
    from tools.live import Browser

    browser = Browser(base)
    status = browser.log_in(username, PASSWORD)
    if status != 302:
        raise RuntimeError(f"log-in as {username} failed: {status}")
    return browser


def verdict(holds: bool) -> str:
    return "holds" if holds else "**does not hold**"


# --- (1) one backup-code attempt ---------------------------------------------------------------


class DerivationCounter:
    """Counts bcrypt derivations (hashpw, checkpw) made through the bcrypt module."""

    def __init__(self) -> None:
        self.count = 0
        self._hashpw, self._checkpw = bcrypt.hashpw, bcrypt.checkpw

    def __enter__(self):
        def hashpw(*args):
            self.count += 1
            return self._hashpw(*args)

        def checkpw(*args):
            self.count += 1
            return self._checkpw(*args)

        bcrypt.hashpw, bcrypt.checkpw = hashpw, checkpw
        return self

    def __exit__(self, *exc) -> None:
        bcrypt.hashpw, bcrypt.checkpw = self._hashpw, self._checkpw


def peer_redeem(stored: list[tuple[bytes, bool]], code: str) -> int | None:
    """The peers' way: bcrypt.checkpw against each unused stored code until one matches."""
    for index, (digest, used) in enumerate(stored):
        if not used and bcrypt.checkpw(code.encode(), digest):
            return index
    return None


def section_attempt(bench: Bench) -> None:
    from extensions import db
    from security.backup_codes import redeem_backup_code

    app = bench.app()
    codes = make_users(app, ["attempt"])["attempt"]
    wrong = [f"{n:08d}" for n in range(40) if f"{n:08d}" not in codes]
    rounds = 10
    stored = [(bcrypt.hashpw(code.encode(), bcrypt.gensalt(CODE_COST)), False) for code in codes]
    ours = peers = ours_right = peers_right = 0.0
    ours_derivations = peers_derivations = ours_right_derivations = peers_right_derivations = 0
    with app.app_context():
        from models import User

        user_id = db.session.query(User.id).filter_by(username="attempt").scalar()
        keys = keys_of(app)
        redeem_backup_code(db.session, keys, user_id, wrong[-1])  # warm-up: connection, caches
        # Interleaved, so that a change in the machine's load hits both sides alike.
        for code in wrong[:rounds]:
            with DerivationCounter() as counter:
                started = time.perf_counter()
                assert redeem_backup_code(db.session, keys, user_id, code) is None
                ours += time.perf_counter() - started
            ours_derivations += counter.count
            with DerivationCounter() as counter:
                started = time.perf_counter()
                assert peer_redeem(stored, code) is None
                peers += time.perf_counter() - started
            peers_derivations += counter.count
        # Right codes: each of the ten used once (Sparekey's UPDATE marks it used).
        for code in codes:
            with DerivationCounter() as counter:
                started = time.perf_counter()
                assert redeem_backup_code(db.session, keys, user_id, code) is not None
                ours_right += time.perf_counter() - started
            ours_right_derivations += counter.count
            with DerivationCounter() as counter:
                started = time.perf_counter()
                assert peer_redeem(stored, code) is not None
                peers_right += time.perf_counter() - started
            peers_right_derivations += counter.count
        db.session.rollback()
        db.session.remove()
    ours, peers = ours / rounds, peers / rounds
    ours_derivations, peers_derivations = ours_derivations / rounds, peers_derivations / rounds
    ours_right, peers_right = ours_right / len(codes), peers_right / len(codes)
    ours_right_derivations /= len(codes)
    peers_right_derivations /= len(codes)
    bench.sections.append(
        "\n".join(
            [
                "## 1. One backup-code attempt (cost 10, 10 codes in the set)",
                "",
                "Sparekey: `security.backup_codes.redeem_backup_code` (one derivation, one "
                "conditional UPDATE, on the bench database). Peers: `bcrypt.checkpw` against "
                "each of 10 stored per-code bcrypt hashes at the same cost, until one matches.",
                "",
                "| Attempt | Sparekey | Peers' loop | Peers ÷ Sparekey |",
                "|---|---|---|---|",
                f"| Wrong code (what guessing costs the server), time | {ours * 1000:.1f} ms | "
                f"{peers * 1000:.1f} ms | **{peers / ours:.1f}×** |",
                f"| Wrong code, derivations | {ours_derivations:g} | {peers_derivations:g} | "
                f"{peers_derivations / ours_derivations:g}× |",
                f"| Right code (average over the 10 codes), time | {ours_right * 1000:.1f} ms | "
                f"{peers_right * 1000:.1f} ms | {peers_right / ours_right:.1f}× |",
                f"| Right code, derivations | {ours_right_derivations:g} | "
                f"{peers_right_derivations:g} | "
                f"{peers_right_derivations / ours_right_derivations:g}× |",
                "",
                f"Averaged over {rounds} wrong codes and over the 10 right codes, Sparekey and "
                "the peers' loop interleaved attempt by attempt. Sparekey's time includes its "
                "database round trips (the set's salt, the conditional UPDATE); the peers' loop "
                "is bcrypt alone, which favours the peers. The peers stop at the first match, "
                "so a right code costs them 5.5 derivations on average and a wrong one all 10.",
            ]
        )
    )


# --- (2) generating a set ----------------------------------------------------------------------


def section_generate(bench: Bench) -> None:
    from extensions import db
    from models import User
    from security.backup_codes import replace_code_set

    app = bench.app()
    make_users(app, ["generate"], codes=False)
    times = []
    with app.app_context():
        user_id = db.session.query(User.id).filter_by(username="generate").scalar()
        keys = keys_of(app)
        for _ in range(5):
            started = time.perf_counter()
            replace_code_set(db.session, keys, user_id)
            db.session.commit()
            times.append(time.perf_counter() - started)
        db.session.remove()
    median = statistics.median(times)
    cpus = os.cpu_count() or 1
    bench.sections.append(
        "\n".join(
            [
                "## 2. Generating a set of 10 at production cost (10)",
                "",
                "`security.backup_codes.replace_code_set` and the commit: 10 codes, 10 "
                "derivations, the transaction that replaces the old set.",
                "",
                "| Median of 5 | Fastest | Slowest | Target | |",
                "|---|---|---|---|---|",
                f"| {median * 1000:.0f} ms | {min(times) * 1000:.0f} ms | "
                f"{max(times) * 1000:.0f} ms | < 1 s on 2 cores | {verdict(median < 1)} |",
                "",
                f"The 10 derivations run one after the other on one core (this machine has "
                f"{cpus}), so the time does not depend on the core count.",
            ]
        )
    )


# --- (3) page rate vs a bare route ---------------------------------------------------------------


def flask_side_costs(app, username: str, paths: dict[str, tuple[str, bool]]) -> dict:
    """In-process, no HTTP server: per request, the best of 3 batches of 200 of the total time,
    the time inside SQL statements, and the number of statements."""
    from sqlalchemy import event

    from extensions import db
    from tools.inprocess import Person

    with app.app_context():
        engine = db.engine
    sql = {"time": 0.0, "count": 0}
    starts: list[float] = []

    def before(*args):
        sql["count"] += 1
        starts.append(time.perf_counter())

    def after(*args):
        sql["time"] += time.perf_counter() - starts.pop()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    results = {}
    try:
        signed_in = Person(app.test_client())
        signed_in.login(username, PASSWORD)
        signed_out = app.test_client()
        for label, (path, with_session) in paths.items():
            client = signed_in.client if with_session else signed_out
            for _ in range(20):
                client.get(path)
            batches = []
            for _ in range(3):
                sql["time"], sql["count"] = 0.0, 0
                started = time.perf_counter()
                for _ in range(200):
                    response = client.get(path)
                    assert response.status_code == 200, (path, response.status_code)
                batches.append(((time.perf_counter() - started) / 200, sql["time"] / 200))
            total, sql_time = min(batches)
            results[label] = (total, sql_time, sql["count"] / 200)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return results


def section_pages(bench: Bench) -> None:
    from tools.live import Browser

    app = bench.app()
    make_users(app, ["pages"])
    connections = 8
    rows = []
    with gunicorn(bench.workdir, bench.env, 2, "bench.bench_app:create_bench_app()") as base:
        browser = log_in(base, "pages")
        cookie = browser.cookie_header()
        pages = {"Profile": "/pages/", "Backup Codes": BACKUP_CODES_PAGE}
        for label, path in pages.items():
            status, _, body = browser.get(path)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            size = len(body.encode())
            bare_path = f"/bench/bare/{size}"
            assert len(Browser(base).get(bare_path)[2].encode()) == size
            load.measure(base, path, cookie, connections, 2)  # warm-up
            # Interleaved rounds, best of each: other load on the machine only lowers a rate.
            runs: dict[str, list[load.LoadResult]] = {"page": [], "bare": [], "bare in": []}
            for _ in range(ROUNDS):
                runs["page"].append(load.measure(base, path, cookie, connections, SECONDS))
                runs["bare"].append(load.measure(base, bare_path, "", connections, SECONDS))
                runs["bare in"].append(load.measure(base, bare_path, cookie, connections, SECONDS))
            page, bare, bare_signed_in = (
                max(runs[kind], key=lambda r: r.requests_per_second)
                for kind in ("page", "bare", "bare in")
            )
            rows.append((label, path, size, page, bare, bare_signed_in))
    add_bare_route(app)
    bare_size = rows[0][2]
    inprocess = flask_side_costs(
        app,
        "pages",
        {
            f"Bare route, {bare_size} bytes, signed out": (f"/bench/bare/{bare_size}", False),
            f"Bare route, {bare_size} bytes, signed in": (f"/bench/bare/{bare_size}", True),
            "Profile page": ("/pages/", True),
            "Backup Codes page": (BACKUP_CODES_PAGE, True),
        },
    )
    tool = rows[0][3].tool
    lines = [
        "## 3. Page rate under gunicorn vs a bare route of the same size",
        "",
        f"gunicorn with `gunicorn.conf.py`, 2 workers × 4 threads (gthread, keep-alive), "
        f"{bench.database_note}; load: {tool}, {connections} keep-alive connections, "
        f"{ROUNDS} interleaved rounds of {SECONDS:g} s per figure after a 2 s warm-up, the best "
        "of each kept (other load on the machine can only lower a rate), signed in (session "
        "cookie) for the pages. "
        "The bare route (`bench/bench_app.py`) answers the same number of bytes from the same "
        "server, through the same hooks, with no template and no query of its own; requested "
        "without a cookie (the target's comparison) and, to split the gap, with the session "
        "cookie (then the server-side session is looked up, as for every signed-in page).",
        "",
        "| Page | Bytes | Page req/s | Bare req/s | **Page ÷ bare** (target ≥ 0.5) | "
        "Bare signed in req/s | Page ÷ bare signed in | Bad responses |",
        "|---|---|---|---|---|---|---|---|",
    ]
    gaps = []
    for label, path, size, page, bare, bare_signed_in in rows:
        ratio = page.requests_per_second / bare.requests_per_second
        signed_in_ratio = page.requests_per_second / bare_signed_in.requests_per_second
        bad = page.bad_responses + bare.bad_responses + bare_signed_in.bad_responses
        lines.append(
            f"| {label} `{path}` | {size} | {page.requests_per_second:.0f} | "
            f"{bare.requests_per_second:.0f} | **{ratio:.2f}** {verdict(ratio >= 0.5)} | "
            f"{bare_signed_in.requests_per_second:.0f} | {signed_in_ratio:.2f} | {bad} |"
        )
        if ratio < 0.5:
            gaps.append(label)
    lines += [
        "",
        "Where the time goes, in-process with Flask's test client (no HTTP server, no load "
        "generator; best of 3 batches of 200 requests, same database):",
        "",
        "| Request | Time per request | SQL statements | Time inside them | Rest (Flask, "
        "cookie, ORM, template) |",
        "|---|---|---|---|---|",
    ]
    for label, (total, sql_time, count) in inprocess.items():
        lines.append(
            f"| {label} | {total * 1000:.2f} ms | {count:g} | {sql_time * 1000:.2f} ms | "
            f"{(total - sql_time) * 1000:.2f} ms |"
        )
    if gaps:
        bare_out = inprocess[f"Bare route, {bare_size} bytes, signed out"][0]
        bare_in, _, bare_in_count = inprocess[f"Bare route, {bare_size} bytes, signed in"]
        own = []
        for label, *_ in rows:
            total, _, count = inprocess[f"{label} page"]
            own.append(
                f"{label} {(total - bare_in) * 1000:+.2f} ms and {count - bare_in_count:+g} "
                "statements"
            )
        cpus = os.cpu_count() or 1
        lines += [
            "",
            f"Gap: {', '.join(gaps)} below half the bare rate. Cause, from the table above: "
            f"the bare route signed out costs {bare_out * 1000:.2f} ms and never touches the "
            f"database. The same route with the session cookie costs {bare_in * 1000:.2f} ms: "
            "the server-side session lookup that every signed-in page needs (one SELECT, but "
            "also BEGIN, the pool's ping on check-out and the ROLLBACK at the end of the "
            "request, each a round trip to the database, plus verifying the signed cookie and "
            "loading the ORM objects). The pages' own work (their queries, the template) comes "
            f"on top of that: {', '.join(own)} against the bare route signed in. On this "
            f"machine the server, the database and the load generator share {cpus} CPUs, so "
            "each round trip also costs CPU the bare route never spends."
            + (
                " Reaching 0.5 against a database-free route would need a signed-in page to "
                "cost no more than two bare requests, which the lookup alone exceeds."
                if bare_in > 2 * bare_out
                else ""
            ),
        ]
    bench.sections.append("\n".join(lines))


# --- (4) log-ins per second vs raw bcrypt ------------------------------------------------------


def raw_bcrypt_rate(threads: int, seconds: float) -> float:
    stored = bcrypt.hashpw(b"x" * 44, bcrypt.gensalt(PASSWORD_COST))
    counts = [0] * threads
    stop_at = time.perf_counter() + seconds

    def work(index: int) -> None:
        while time.perf_counter() < stop_at:
            bcrypt.checkpw(b"x" * 44, stored)
            counts[index] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def login_rate(base: str, usernames: list[str], seconds: float) -> tuple[float, Counter]:
    """Each client keeps its pre-log-in cookie and token and posts the log-in form repeatedly."""
    import http.client
    from urllib.parse import urlencode, urlsplit

    from tools.live import Browser

    parts = urlsplit(base)
    outcomes: Counter = Counter()
    lock = threading.Lock()
    prepared = []
    for name in usernames:
        browser = Browser(base)
        token = browser.token("/accounts/login/")
        body = urlencode({"csrf_token": token, "identifier": name, "password": PASSWORD})
        prepared.append((browser.cookie_header(), body))
    stop_at = time.perf_counter() + seconds
    done = [0] * len(prepared)

    def client(index: int) -> None:
        cookie, body = prepared[index]
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        while time.perf_counter() < stop_at:
            connection.request("POST", "/accounts/login/", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            ok = response.status == 302 and "/accounts/" not in response.getheader("Location", "")
            with lock:
                outcomes["signed in" if ok else f"HTTP {response.status}"] += 1
            if ok:
                done[index] += 1
        connection.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(len(prepared))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - started), outcomes


def section_logins(bench: Bench) -> None:
    app = bench.app()
    names = [f"login{n}" for n in range(4)]
    make_users(app, names, codes=False)
    cpus = os.cpu_count() or 1
    raw_before = raw_bcrypt_rate(cpus, SECONDS)
    with gunicorn(bench.workdir, bench.env, 2, "bench.bench_app:create_bench_app()") as base:
        login_rate(base, names, 2)  # warm-up
        logins, outcomes = login_rate(base, names, 2 * SECONDS)
    raw_after = raw_bcrypt_rate(cpus, SECONDS)
    # The better of the two raw runs: other load on the machine can only lower a raw figure.
    raw = max(raw_before, raw_after)
    ratio = logins / raw
    lines = [
        f"## 4. Log-ins per second vs raw bcrypt verifications per second (cost {PASSWORD_COST})",
        "",
        f"Log-ins: 4 clients posting the log-in form (each POST a full log-in: lookup, "
        f"failure-counter reservation, one bcrypt check, new session row, event, commit) to "
        f"gunicorn with 2 workers × 4 threads, {bench.database_note}, {2 * SECONDS:g} s. "
        f"Raw: `bcrypt.checkpw` at the same cost in {cpus} threads (one per CPU; bcrypt "
        f"releases the GIL), {SECONDS:g} s before and {SECONDS:g} s after, server "
        f"stopped: {raw_before:.2f}/s and {raw_after:.2f}/s; the higher is used.",
        "",
        "| Log-ins/s | Raw bcrypt/s | Ratio | Target ≥ 0.9 | Outcomes |",
        "|---|---|---|---|---|",
        f"| {logins:.2f} | {raw:.2f} | **{ratio:.2f}** | {verdict(ratio >= 0.9)} | "
        f"{', '.join(f'{k}: {v}' for k, v in sorted(outcomes.items()))} |",
    ]
    if ratio < 0.9:
        lines += [
            "",
            "Gap: during the log-ins the load generator and PostgreSQL share the CPUs with "
            "the server (the raw run has them to itself), and each log-in also parses the "
            "form, reserves and clears the failure counter, writes a session row and an "
            "event, and commits.",
        ]
    bench.sections.append("\n".join(lines))


# --- (5) SQL statements per page ---------------------------------------------------------------

STATEMENT_SHAPE = re.compile(r"\s+")


def page_paths(app, username: str) -> list[str]:
    """Every GET page without URL arguments, plus the account's own profile page."""
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments or rule.endpoint in ("static",):
            continue
        if rule.rule.startswith("/bench"):
            continue
        paths.append(rule.rule)
    paths.append(f"/{username}/")
    return sorted(set(paths))


def count_statements(app, username: str) -> dict[str, tuple[int, list[str], int]]:
    """Per path: statements of the second request, their text, and the HTTP status."""
    from sqlalchemy import event

    from extensions import db
    from tools.inprocess import Person

    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(STATEMENT_SHAPE.sub(" ", statement).strip())

    event.listen(engine, "before_cursor_execute", record)
    try:
        person = Person(app.test_client())
        if username:
            person.login(username, PASSWORD)
        counts = {}
        for path in page_paths(app, username or "nobody"):
            if not username and path.startswith("/nobody"):
                continue
            person.client.get(path)  # first visit: warm caches
            seen.clear()
            response = person.client.get(path)
            counts[path] = (len(seen), list(seen), response.status_code)
        return counts
    finally:
        event.remove(engine, "before_cursor_execute", record)


def grow_account(app, username: str, sessions: int, events: int, used_codes: int) -> None:
    from extensions import db
    from models import BackupCode, SecurityEvent, User
    from security.sessions import start_session

    with app.app_context():
        user_id = db.session.query(User.id).filter_by(username=username).scalar()
        for n in range(sessions):
            start_session(db.session, user_id, f"198.51.100.{n % 250}", "Mozilla/5.0 bench")
        base = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
        db.session.add_all(
            SecurityEvent(
                user_id=user_id,
                kind="logged_in",
                created_at=base + timedelta(minutes=n),
                ip="198.51.100.7",
                user_agent="Mozilla/5.0 bench",
            )
            for n in range(events)
        )
        codes = db.session.query(BackupCode).filter_by(user_id=user_id).order_by(BackupCode.number)
        for code in codes.limit(used_codes):
            code.used_at = base
        db.session.commit()
        db.session.remove()


def section_statements(bench: Bench) -> None:
    app = bench.app()
    make_users(app, ["small", "large"])
    grow_account(app, "small", sessions=0, events=0, used_codes=0)
    grow_account(app, "large", sessions=200, events=2000, used_codes=8)
    small = count_statements(app, "small")
    large = count_statements(app, "large")
    anonymous = count_statements(app, "")
    lines = [
        "## 5. SQL statements per request",
        "",
        "Counted with a `before_cursor_execute` listener on the app's engine, on the second "
        "request to each page (the first warms caches), signed in. Small account: 1 session, "
        "its sign-up events, 10 codes unused. Large account: 201 sessions, 2,000 more events, "
        "8 of 10 codes used. Pages are every GET route without URL arguments, plus the "
        "profile. Not counted: the once-a-minute `last_seen_at` UPDATE + COMMIT of a session "
        "(1 request a minute per session).",
        "",
        "| Page | Status | Small account | Large account | Target ≤ 4 and constant |",
        "|---|---|---|---|---|",
    ]
    over = {}
    for path in small:
        s_count, s_text, status = small[path]
        l_count, l_text, _ = large.get(path.replace("/small/", "/large/"), (None, [], None))
        if path == "/small/":
            l_count, l_text, _ = large["/large/"]
        ok = s_count <= 4 and l_count == s_count
        label = "/&lt;username&gt;/ (own profile)" if path == "/small/" else path
        lines.append(f"| `{label}` | {status} | {s_count} | {l_count} | {verdict(ok)} |")
        if not ok:
            over[label] = (s_text, l_text)
    lines += ["", "Signed out:", "", "| Page | Status | Statements |", "|---|---|---|"]
    for path, (count, text, status) in anonymous.items():
        if path in ("/small/", "/large/"):
            continue
        lines.append(f"| `{path}` | {status} | {count} |")
        if count > 4:
            over[f"{path} (signed out)"] = (text, text)
    if over:
        lines += ["", "Statements of the pages over the target (small account, then large):"]
        for label, (s_text, l_text) in over.items():
            lines += ["", f"`{label}`:", ""]
            lines += [f"{n}. `{statement[:300]}`" for n, statement in enumerate(s_text, 1)]
            if l_text != s_text:
                lines += ["", "large account:", ""]
                lines += [f"{n}. `{statement[:300]}`" for n, statement in enumerate(l_text, 1)]
    bench.sections.append("\n".join(lines))


# --- (6) double-spend under load ---------------------------------------------------------------


def post_form(base: str, path: str, cookie: str, data: dict) -> tuple[int, str, str]:
    """(status, Location, body) of one POST on its own connection, waiting up to
    SUBMIT_TIMEOUT; status 0 and the error's name when no answer came."""
    import http.client
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=SUBMIT_TIMEOUT)
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    try:
        connection.request("POST", path, body=urlencode(data), headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Location", ""), response.read().decode()
    except (OSError, http.client.HTTPException) as error:
        return 0, "", type(error).__name__
    finally:
        connection.close()


def section_double_spend(bench: Bench) -> None:
    title = "## 6. Double-spend under load: 1,000 redemptions of 100 codes, 4 workers"
    if bench.postgres is None:
        bench.sections.append(
            f"{title}\n\nSkipped: {bench.database_note}. Set BENCH_DATABASE_URL to a "
            "PostgreSQL database to run it."
        )
        return
    from sqlalchemy import func, select

    from extensions import db
    from models import BackupCode, SecurityEvent
    from tools.live import CODE_PAGE, Browser, at_once

    app = bench.app()
    names = [f"spend{n}" for n in range(10)]
    codes = make_users(app, names)
    plan = [(name, code) for name in names for code in codes[name] for _ in range(10)]
    env = {**bench.env, "BENCH_FAILURES_BEFORE_BACKOFF": "100000"}
    with gunicorn(bench.workdir, env, 4, "bench.bench_app:create_bench_app()") as base:

        def prepare(item):
            browser = Browser(base)
            token = browser.ready_to_enter_code(item[0])
            return browser.cookie_header(), token, item[1]

        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            clients = list(pool.map(prepare, plan))
        prepared_in = time.perf_counter() - started

        def submit(index: int) -> tuple[int, str, str]:
            cookie, token, code = clients[index]
            return post_form(base, CODE_PAGE, cookie, {"csrf_token": token, "code": code})

        started = time.perf_counter()
        results = at_once(len(clients), submit, timeout=SUBMIT_TIMEOUT + 60)
        elapsed = time.perf_counter() - started
    outcomes: Counter = Counter()
    for result in results:
        status, location, body = result or (0, "", "still waiting")
        if status == 0:
            outcomes[f"no answer: {body}"] += 1
        elif status == 302 and location.endswith("/accounts/password/new/"):
            outcomes["signed in"] += 1
        elif status == 200 and "That code did not work." in body:
            outcomes["refused: code already used"] += 1
        elif status == 200 and "Too many" in body:
            outcomes["refused: throttled"] += 1
        else:
            outcomes[f"other: HTTP {status}"] += 1
    with app.app_context():
        used = db.session.scalar(
            select(func.count()).select_from(BackupCode).where(BackupCode.used_at.is_not(None))
        )
        used_events = db.session.scalar(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.kind == "backup_code_used")
        )
        db.session.remove()
    wins = outcomes["signed in"]
    server_errors = sum(v for k, v in outcomes.items() if re.search(r"HTTP 5\d\d$", k))
    unanswered = sum(v for k, v in outcomes.items() if k.startswith("no answer"))
    lines = [
        title,
        "",
        f"10 accounts × 10 codes at cost {CODE_COST} on {bench.database_note}; every code "
        "submitted by 10 clients, all 1,000 released at once (one thread and one connection "
        "each) at gunicorn with 4 workers × 4 threads. The per-account back-off is lifted for "
        "this run (`BENCH_FAILURES_BEFORE_BACKOFF`) so that every submission reaches the "
        "conditional UPDATE instead of being throttled; per-IP limits are off.",
        "",
        "| Successes | Codes marked used | 'code used' events | Refused | Server errors | "
        "No answer | Target | |",
        "|---|---|---|---|---|---|---|---|",
        f"| **{wins}** | {used} | {used_events} | "
        f"{outcomes['refused: code already used'] + outcomes['refused: throttled']} | "
        f"{server_errors} | {unanswered} | exactly 100 | "
        f"{verdict(wins == 100 and used == 100)} |",
        "",
        f"Outcomes: {', '.join(f'{k}: {v}' for k, v in sorted(outcomes.items()))}. "
        f"{len(results) - unanswered:,} of 1,000 answered (each client waits up to "
        f"{SUBMIT_TIMEOUT} s) in {elapsed:.1f} s; clients prepared in {prepared_in:.1f} s.",
    ]
    bench.sections.append("\n".join(lines))


# --- (7) a wrong code for a name without an account -------------------------------------------


def section_code_timing(bench: Bench) -> None:
    """bench/code_timing.py's section, on this run's database (it also runs alone)."""
    from config import normalise_database_url

    url = normalise_database_url(bench.env["DATABASE_URL"])
    bench.sections.append(code_timing.timing_section(url, bench.database_note, "`make bench`"))


# --- the report --------------------------------------------------------------------------------


def write_results(bench: Bench, started: float, wall: float) -> None:
    cpus = os.cpu_count() or 1
    tool = "wrk" if load.wrk_available() else "Python threads + http.client"
    header = [
        "# Sparekey benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`; section 7 by `bench/code_timing.py`, which "
        "also runs alone). Every ratio compares two measurements from this one run on this one "
        "machine; absolute numbers only mean something next to each other. The database is "
        "`BENCH_DATABASE_URL`, by default `sparekey_bench` on the local PostgreSQL (created if "
        "missing; its tables are dropped and made again for each section), never the tests' "
        "database.",
        "",
        "| | |",
        "|---|---|",
        f"| Date | {datetime.fromtimestamp(started, UTC):%Y-%m-%d %H:%M} UTC |",
        f"| CPUs | {cpus} ({platform.machine()}, {platform.processor() or 'unknown model'}) |",
        f"| Python | {platform.python_version()}, bcrypt {bcrypt.__version__} |",
        f"| Database | {bench.database_note} |",
        f"| Load generator | {tool}, on the same machine as the server |",
        f"| Whole run | {wall:.0f} s |",
        f"| Load average (1 min) at start, at end | {bench.load_start:.2f}, "
        f"{os.getloadavg()[0]:.2f} (other work on the machine lowers every figure) |",
        "",
    ]
    RESULTS.write_text("\n".join(header) + "\n" + "\n\n".join(bench.sections) + "\n")


def main() -> None:
    started = time.time()
    clock = time.perf_counter()
    postgres, note = postgres_url()
    workdir = Path(tempfile.mkdtemp(prefix="sparekey-bench-"))
    database_url = postgres or f"sqlite:///{workdir / 'bench.db'}"
    database_note = (
        f"PostgreSQL ({postgres.rsplit('@', 1)[-1]})" if postgres else f"SQLite ({note})"
    )
    env = environment(
        {
            "SPAREKEY_ENV": "development",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": database_url,
            "PASSWORD_BCRYPT_COST": str(PASSWORD_COST),
            "BACKUP_CODE_BCRYPT_COST": str(CODE_COST),
        }
    )
    os.environ.clear()
    os.environ.update(env)
    bench = Bench(workdir, database_note, postgres, env)
    steps: list[tuple[str, Callable[[Bench], None]]] = [
        ("1 attempt", section_attempt),
        ("2 generate", section_generate),
        ("3 pages", section_pages),
        ("4 log-ins", section_logins),
        ("5 statements", section_statements),
        ("6 double-spend", section_double_spend),
        ("7 code timing", section_code_timing),
    ]
    for name, step in steps:
        reset_database(bench.app())
        step_started = time.perf_counter()
        print(f"bench {name} ...", flush=True)
        step(bench)
        print(f"bench {name}: {time.perf_counter() - step_started:.1f} s", flush=True)
    write_results(bench, started, time.perf_counter() - clock)
    print(f"Wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
