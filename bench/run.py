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

import operator
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

from bench import code_timing, demo_sandboxes, load  # noqa: E402
from bench.bench_app import add_bare_route  # noqa: E402
from tools.gunicorn import environment, gunicorn, live_workers  # noqa: E402

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


# How a figure is checked against a target's bound, by the sign the target is written with.
TARGET_CHECKS: dict[str, Callable[[float, float], bool]] = {"≤": operator.le, "≥": operator.ge}


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


# --- (3) signed-in pages: round trips, Python time, rate against a bare route and a peer --------

# Interleaved rounds until the spread of every figure over the last WINDOW rounds is under
# SPREAD_TARGET (at least WINDOW rounds, at most the maximum; the spread is shown either way).
WINDOW = 4
SPREAD_TARGET = 0.10
MAX_LOAD_ROUNDS = 10
BATCH = 100
MAX_BATCH_ROUNDS = 40
PEER_EMAIL_PASSWORD = PASSWORD


@dataclass
class Figure:
    """One figure measured round by round; reported as the median of the last WINDOW rounds
    with their spread, (max - min) / median."""

    values: list[float] = field(default_factory=list)

    def window(self) -> list[float]:
        return self.values[-WINDOW:]

    @property
    def median(self) -> float:
        return statistics.median(self.window())

    @property
    def spread(self) -> float:
        window = self.window()
        middle = statistics.median(window)
        return (max(window) - min(window)) / middle if middle else 0.0

    def settled(self) -> bool:
        return len(self.values) >= WINDOW and self.spread < SPREAD_TARGET


def shown(figure: Figure, digits: int = 2, unit: str = "") -> str:
    value = f"{figure.median:,.{digits}f}{unit}"
    mark = "" if figure.spread < SPREAD_TARGET else " (over 10 %)"
    return f"{value} ± {figure.spread * 50:.0f} %{mark}"


def round_trips(app, requests: dict[str, tuple]) -> dict[str, tuple[float, list[str]]]:
    """Per request: round trips to PostgreSQL counted in libpq's trace (`bench/roundtrips.py`),
    or on SQLite the statements its driver ran; and what was sent, for one request."""
    from extensions import db

    with app.app_context():
        engine = db.engine
    counted: dict[str, tuple[float, list[str]]] = {}
    if engine.dialect.name == "postgresql":
        from bench.roundtrips import RoundTrips

        trips = RoundTrips(engine)
        try:
            for label, (client, path) in requests.items():
                for _ in range(10):
                    client.get(path)
                trips.start()
                client.get(path)
                one = trips.stop()
                waits = trips.waits()
                trips.start()
                for _ in range(20):
                    client.get(path)
                counted[label] = ((one + trips.stop()) / 21, waits)
        finally:
            trips.close()
        return counted
    from sqlalchemy import event

    seen: list[str] = []

    def traced(dbapi_connection, record):
        dbapi_connection.set_trace_callback(seen.append)

    engine.dispose()
    event.listen(engine, "connect", traced)
    try:
        for label, (client, path) in requests.items():
            client.get(path)
            seen.clear()
            client.get(path)
            counted[label] = (float(len(seen)), list(seen))
    finally:
        event.remove(engine, "connect", traced)
        engine.dispose()
    return counted


def session_digest(app, username: str) -> str:
    """The id (the token's digest) of one of `username`'s session rows, for the floor route."""
    from sqlalchemy import select

    from extensions import db
    from models import User, UserSession

    with app.app_context():
        digest = db.session.scalars(
            select(UserSession.id).join(User).where(User.username == username).limit(1)
        ).one()
        db.session.remove()
    return digest


def inprocess_times(requests: dict[str, tuple]) -> tuple[dict[str, Figure], int]:
    """Per request, in this process with Flask's test client: batches of BATCH requests of each
    kind, interleaved, round after round until every figure settles (or MAX_BATCH_ROUNDS)."""
    figures = {label: Figure() for label in requests}
    figures["signed in ÷ signed out"] = Figure()
    if "floor" in requests:
        figures["floor ÷ signed out"] = Figure()
        figures["signed in ÷ floor"] = Figure()
    for client, path in requests.values():
        for _ in range(50):
            client.get(path)
    rounds = 0
    while rounds < MAX_BATCH_ROUNDS:
        rounds += 1
        for label, (client, path) in requests.items():
            started = time.perf_counter()
            for _ in range(BATCH):
                response = client.get(path)
            figures[label].values.append((time.perf_counter() - started) / BATCH)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code}")
        out, into = figures["bare, signed out"].values[-1], figures["bare, signed in"].values[-1]
        figures["signed in ÷ signed out"].values.append(into / out)
        if "floor" in figures:
            floor = figures["floor"].values[-1]
            figures["floor ÷ signed out"].values.append(floor / out)
            figures["signed in ÷ floor"].values.append(into / floor)
        if all(figure.settled() for figure in figures.values()):
            break
    return figures, rounds


def peer_log_in(base: str) -> str:
    """Log in to the peer (its own form, its CSRF token); its session cookie header."""
    from bench.peers.security_too import EMAIL
    from tools.live import Browser

    browser = Browser(base)
    token = browser.token("/login")
    status, _, _ = browser.post(
        "/login", {"email": EMAIL, "password": PEER_EMAIL_PASSWORD, "csrf_token": token}
    )
    if status != 302:
        raise RuntimeError(f"log-in to the peer answered {status}")
    return browser.cookie_header()


def peer_test_client(peer):
    """A test client of the peer app, logged in through its form."""
    from bench.peers.security_too import EMAIL
    from tools.live import csrf_from

    client = peer.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    data = {"email": EMAIL, "password": PEER_EMAIL_PASSWORD, "csrf_token": token}
    if client.post("/login", data=data).status_code != 302:
        raise RuntimeError("could not log in to the peer in-process")
    return client


def peer_app(bench: Bench, size: int):
    """The peer app on this run's database, its one account made."""
    from bench.peers.security_too import create_peer_app, prepare

    os.environ.update(peer_environment(bench, size))
    app = create_peer_app()
    prepare(app, PEER_EMAIL_PASSWORD)
    return app


def gather_statistics(bench: Bench) -> None:
    """ANALYZE the bench's PostgreSQL database (every table, Sparekey's and the peer's), once
    its rows are made: a database in service has its planner statistics (autovacuum gathers
    them), and tables made a moment ago have none, which had PostgreSQL read the Backup Codes
    page's used codes with a bitmap scan that cost it 30 to 60 µs more per request. Nothing on
    SQLite."""
    import psycopg

    if not bench.postgres:
        return
    with psycopg.connect(bench.postgres, autocommit=True) as connection:
        connection.execute("ANALYZE")


def peer_environment(bench: Bench, size: int) -> dict:
    from config import normalise_database_url

    return {
        "PEER_DATABASE_URL": normalise_database_url(bench.env["DATABASE_URL"]),
        "PEER_SECRET_KEY": bench.env["SECRET_KEY"],
        "PEER_PAGE_BYTES": str(size),
    }


def cpu_seconds(pids) -> float:
    """User + system CPU seconds used so far by `pids` (Linux /proc; 0 for one that is gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def database_processes() -> list[int]:
    """This machine's PostgreSQL server processes (the bench's database is local)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith("postgres"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


# The target ratios of section 3: each page's figure ÷ the other's, within one round.
TARGET_RATIOS = {
    "Profile ÷ bare signed out": ("Profile", "bare, signed out"),
    "Backup Codes ÷ bare signed out": ("Backup Codes", "bare, signed out"),
    "Profile ÷ peer": ("Profile", "peer"),
    "Backup Codes ÷ peer": ("Backup Codes", "peer"),
}
# Beside them, what the hardware allows (`bench/bench_app.py:floor`): the bare route plus the
# session lookup's one round trip and nothing else, against the bare route, and what the
# session code adds to that floor.
FLOOR_RATIOS = {
    "floor ÷ bare signed out": ("floor", "bare, signed out"),
    "bare signed in ÷ floor": ("bare, signed in", "floor"),
    "floor ÷ peer": ("floor", "peer"),
}
RATIOS = {**TARGET_RATIOS, **FLOOR_RATIOS}


def add_ratios(ratios: dict[str, Figure], per_label: dict[str, float]) -> None:
    """One round's RATIOS of `per_label` (requests per second, or per CPU second)."""
    for name, (page, other) in RATIOS.items():
        ratios[name].values.append(per_label[page] / per_label[other])


def section_pages(bench: Bench) -> None:
    from bench.profile_signed_in import profile_app, profile_tables
    from tools.inprocess import Person
    from tools.live import Browser

    app = bench.app()
    make_users(app, ["pages"])
    connections = 8
    pages = {"Profile": "/pages/", "Backup Codes": BACKUP_CODES_PAGE}
    load_labels = [
        "Profile",
        "Backup Codes",
        "bare, signed out",
        "bare, signed in",
        "floor",
        "peer",
    ]
    rates = {label: Figure() for label in load_labels}
    ratios = {label: Figure() for label in RATIOS}
    # The server's CPU per request (its workers, and PostgreSQL's processes when it runs here):
    # what each page costs the machine, which moves less with the machine's load than a rate.
    cpu = {label: Figure() for label in load_labels}
    cpu_ratios = {label: Figure() for label in RATIOS}
    measure_cpu = Path("/proc/self/stat").exists()
    sizes: dict[str, int] = {}
    bad = 0
    with gunicorn(bench.workdir, bench.env, 2, "bench.bench_app:create_bench_app()") as base:
        browser = log_in(base, "pages")
        for label, path in pages.items():
            status, _, body = browser.get(path)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            sizes[label] = len(body.encode())
        # The cookie as the browser holds it after its first pages: the first page after log-in
        # puts a new CSRF token in it (log-in clears the cookie), and a browser keeps what it is
        # sent. Taken straight after log-in, every request of the run would make a new token and
        # re-sign the cookie, which no real browser asks for.
        cookie = browser.cookie_header()
        size = sizes["Profile"]
        bare_path = f"/bench/bare/{size}"
        assert len(Browser(base).get(bare_path)[2].encode()) == size
        floor_path = f"/bench/floor/{size}?session={session_digest(app, 'pages')}"
        assert len(Browser(base).get(floor_path)[2].encode()) == size
        peer = peer_app(bench, size)
        peer_env = {**bench.env, **peer_environment(bench, size)}
        peer_dir = bench.workdir / "peer"
        peer_dir.mkdir(exist_ok=True)
        spec = "bench.peers.security_too:create_peer_app()"
        with gunicorn(peer_dir, peer_env, 2, spec) as peer_base:
            peer_cookie = peer_log_in(peer_base)
            status, _, peer_body = Browser(peer_base, {"Cookie": peer_cookie}).get("/page/")
            if status != 200:
                raise RuntimeError(f"the peer's page answered {status}")
            sizes["peer"] = len(peer_body.encode())
            ours = live_workers(bench.workdir, 2)
            theirs = live_workers(peer_dir, 2)
            gather_statistics(bench)
            runs = {
                "Profile": (base, pages["Profile"], cookie, ours),
                "Backup Codes": (base, pages["Backup Codes"], cookie, ours),
                "bare, signed out": (base, bare_path, "", ours),
                "bare, signed in": (base, bare_path, cookie, ours),
                "floor": (base, floor_path, "", ours),
                "peer": (peer_base, "/page/", peer_cookie, theirs),
            }
            for where, path, with_cookie, _ in runs.values():
                load.measure(where, path, with_cookie, connections, 2)  # warm-up
            load_rounds = 0
            while load_rounds < MAX_LOAD_ROUNDS:
                load_rounds += 1
                this_round, cpu_round = {}, {}
                for label, (where, path, with_cookie, workers) in runs.items():
                    server = [*workers, *database_processes()] if measure_cpu else []
                    before = cpu_seconds(server)
                    result = load.measure(where, path, with_cookie, connections, SECONDS)
                    used = cpu_seconds(server) - before
                    this_round[label] = result.requests_per_second
                    rates[label].values.append(result.requests_per_second)
                    bad += result.bad_responses
                    if measure_cpu and result.requests:
                        cpu_round[label] = used / result.requests
                        cpu[label].values.append(cpu_round[label])
                if len(cpu_round) == len(runs):
                    # Requests per CPU second, so that these ratios read as the rates' do: the
                    # other request's CPU per request ÷ the page's.
                    add_ratios(cpu_ratios, {k: 1 / v for k, v in cpu_round.items()})
                add_ratios(ratios, this_round)
                figures = [*rates.values(), *ratios.values()]
                if all(figure.settled() for figure in figures):
                    break
    # In-process: the same requests through Flask's test client, and the peer's page.
    add_bare_route(app)
    person = Person(app.test_client())
    person.login("pages", PASSWORD)
    peer_person = peer_test_client(peer)
    requests = {
        "bare, signed out": (app.test_client(), bare_path),
        "bare, signed in": (person.client, bare_path),
        "floor": (app.test_client(), floor_path),
        "Profile": (person.client, pages["Profile"]),
        "Backup Codes": (person.client, pages["Backup Codes"]),
    }
    trips = round_trips(app, requests)
    times, batch_rounds = inprocess_times({**requests, "peer": (peer_person, "/page/")})
    from bench.peers.security_too import db as peer_db

    trips.update(round_trips_of_peer(peer, peer_db, peer_person))
    signed_out, signed_in, profile_page = profile_app(app, "pages", PASSWORD, size, "/pages/")
    write_section_pages(
        bench,
        sizes,
        rates,
        ratios,
        load_rounds,
        bad,
        trips,
        times,
        batch_rounds,
        profile_tables(signed_out, signed_in, profile_page, "Profile page"),
        connections,
        cpu,
        cpu_ratios,
    )
    bench.sections[-1] += "\n\n" + gaps(times, ratios, signed_out, signed_in, profile_page)


def gaps(times, ratios, signed_out, signed_in, profile_page) -> str:
    """What the profile says about each target that does not hold (empty when all hold)."""

    def share(profiled_in, profiled_out, areas: tuple[str, ...]) -> float:
        added = profiled_in.total - profiled_out.total
        part = sum(
            profiled_in.by_area.get(a, 0.0) - profiled_out.by_area.get(a, 0.0)
            for a in profiled_in.by_area
            if a.startswith(areas)
        )
        return part / added if added > 0 else 0.0

    notes = []
    if times["signed in ÷ signed out"].median > 2:
        database = share(signed_in, signed_out, ("SQLAlchemy", "driver"))
        cookie = share(signed_in, signed_out, ("session cookie", "Flask-Login"))
        floor = times["floor ÷ signed out"].median
        notes.append(
            f"Gap, in-process signed in ÷ signed out: the floor alone (one round trip, no "
            f"session code) is {floor:.2f}× the bare route"
            + (", already over the 2× target. " if floor > 2 else ". ")
            + "Of what the session adds to the bare route, "
            f"the profile puts {database:.0%} in SQLAlchemy and the driver (the one statement "
            "reading the row and its account, sent by the driver on a pooled connection given "
            "back at once, the round trip itself, the two objects made persistent in the "
            "request's ORM session and that session's end) and "
            f"{cookie:.0%} in the cookie and Flask-Login."
        )
    page_ratio = ratios["Profile ÷ bare signed out"].median
    if page_ratio < 0.5:
        templates = share(profile_page, signed_out, ("templates",))
        notes.append(
            f"Gap, Profile ÷ bare route under gunicorn ({page_ratio:.2f}): the page costs "
            f"{profile_page.total / signed_out.total:.1f}× the bare route's Python time in the "
            f"profile. Jinja2's own time is {templates:.0%} of the difference; the rest is what "
            "the templates call (macros, url_for, escaping, `current_user` and `request` "
            "through their proxies, the tour's and the demo's helpers on every page) after the "
            'cuts in docs/decisions.md ("What a signed-in request costs"); the session\'s own '
            "part is the signed-in row above."
        )
    return "\n\n".join(notes)


def round_trips_of_peer(peer, peer_db, client) -> dict[str, tuple[float, list[str]]]:
    from sqlalchemy import event

    with peer.app_context():
        engine = peer_db.engine
    if engine.dialect.name != "postgresql":
        seen: list[str] = []

        def traced(dbapi_connection, record):
            dbapi_connection.set_trace_callback(seen.append)

        engine.dispose()
        event.listen(engine, "connect", traced)
        client.get("/page/")
        seen.clear()
        client.get("/page/")
        event.remove(engine, "connect", traced)
        return {"peer": (float(len(seen)), list(seen))}
    from bench.roundtrips import RoundTrips

    trips = RoundTrips(engine)
    try:
        for _ in range(10):
            client.get("/page/")
        trips.start()
        for _ in range(20):
            client.get("/page/")
        return {"peer": (trips.stop() / 20, trips.waits()[: len(trips.waits()) // 20 or 1])}
    finally:
        trips.close()


def write_section_pages(
    bench,
    sizes,
    rates,
    ratios,
    load_rounds,
    bad,
    trips,
    times,
    batch_rounds,
    profile,
    connections,
    cpu,
    cpu_ratios,
) -> None:
    postgres = bench.postgres is not None
    trip_word = "Round trips" if postgres else "Statements (SQLite: no round trips)"
    tool = "wrk" if load.wrk_available() else "Python threads + http.client"
    signed_in_trips = trips["bare, signed in"][0]
    floor_trips = trips["floor"][0]
    ratio_in = times["signed in ÷ signed out"]

    def target(
        name: str, measured: Figure, floor: Figure, compare: str, bound: float, unit: str = ""
    ) -> str:
        """A target's row: the measured figure and the floor's, each checked against `bound`
        by `compare` (a target the floor misses is out of reach of any page that makes the
        lookup's round trip, on this machine)."""
        meets = TARGET_CHECKS[compare]
        return (
            f"| {name} | **{shown(measured, 2, unit)}** | {compare} {bound:g}{unit} | "
            f"{verdict(meets(measured.median, bound))} | {shown(floor, 2, unit)} | "
            f"{verdict(meets(floor.median, bound))} |"
        )

    floor_bare = ratios["floor ÷ bare signed out"]
    floor_peer = ratios["floor ÷ peer"]
    targets = [
        "| Round trips to the database per signed-in GET (counted at the driver) | "
        f"**{signed_in_trips:g}** | = 1 | {verdict(postgres and signed_in_trips == 1)} | "
        f"{floor_trips:g} | {verdict(postgres and floor_trips == 1)} |",
        target(
            "In-process: bare route signed in ÷ signed out",
            ratio_in,
            times["floor ÷ signed out"],
            "≤",
            2,
            "×",
        ),
        target(
            "Under gunicorn: Profile ÷ bare route signed out",
            ratios["Profile ÷ bare signed out"],
            floor_bare,
            "≥",
            0.5,
        ),
        target(
            "Under gunicorn: Backup Codes ÷ bare route signed out",
            ratios["Backup Codes ÷ bare signed out"],
            floor_bare,
            "≥",
            0.5,
        ),
        target(
            "Under gunicorn: Profile ÷ the peer's signed-in page",
            ratios["Profile ÷ peer"],
            floor_peer,
            "≥",
            2,
            "×",
        ),
        target(
            "Under gunicorn: Backup Codes ÷ the peer's signed-in page",
            ratios["Backup Codes ÷ peer"],
            floor_peer,
            "≥",
            2,
            "×",
        ),
    ]
    lines = [
        "## 3. Signed-in pages: round trips, Python time, and rate against a bare route and a peer",
        "",
        "Each figure is the median of the last "
        f"{WINDOW} interleaved rounds, shown ± half its spread over them ((max − min) ÷ median; "
        f"rounds go on until every spread is under 10 %, at most {MAX_LOAD_ROUNDS} under "
        f"gunicorn and {MAX_BATCH_ROUNDS} in-process; a figure still over 10 % says so). Ratios "
        "are taken within each round, so that a change in the machine's load meets both sides.",
        "",
        "The last two columns put the same figure for the floor (below: the bare route plus the "
        "lookup's one round trip, and nothing else) beside the target. Where the floor misses a "
        "target, no page that makes that round trip can meet it on this machine, whatever its "
        "code.",
        "",
        "| Target | Measured | Target | | The floor | The floor against the target |",
        "|---|---|---|---|---|---|",
    ]
    lines += targets
    if all(figure.values for figure in cpu_ratios.values()):
        lines += [
            "",
            "The gunicorn targets are rates, and a rate here moves with whatever else the machine "
            "does. The same ratios from the server's CPU time per request (measured in the same "
            "runs, below), which moves less: "
            + "; ".join(f"{label} {shown(cpu_ratios[label])}" for label in TARGET_RATIOS)
            + ".",
        ]
    lines += [
        "",
        "What the hardware allows a signed-in request, measured the same way: the floor "
        "(`bench/bench_app.py:floor`) is the bare route plus the one round trip a signed-in "
        "request cannot do without, the session lookup's own statement on a pooled "
        "connection, sent by the driver with no cookie, no Flask-Login, no ORM. In-process, "
        f"floor ÷ signed out is {shown(times['floor ÷ signed out'], 2, '×')}, and the bare "
        f"route signed in ÷ the floor {shown(times['signed in ÷ floor'], 2, '×')} (what the "
        "session code adds). Under gunicorn, the floor ÷ bare signed out is "
        f"{shown(ratios['floor ÷ bare signed out'])} by rate"
        + (
            f" and {shown(cpu_ratios['floor ÷ bare signed out'])} by CPU per request"
            if cpu_ratios["floor ÷ bare signed out"].values
            else ""
        )
        + ": a page that makes a round trip cannot do better than the floor, whatever its "
        "code.",
    ]
    lines += [
        "",
        f"### Under gunicorn ({load_rounds} rounds)",
        "",
        "gunicorn with `gunicorn.conf.py`, 2 workers × 4 threads (gthread, keep-alive), "
        f"{bench.database_note}; load: {tool}, {connections} keep-alive connections, "
        f"{SECONDS:g} s per figure per round after a 2 s warm-up. Bare route "
        "(`bench/bench_app.py`): the Profile page's size, no template, no query of its own, "
        "through the same server and hooks; without a cookie (the target's comparison) and, to "
        "show the session's own cost, with it. Peer (`bench/peers/security_too.py`): a minimal "
        "Flask-Security-Too app as its quick start sets it up (Flask-SQLAlchemy, "
        "`pool_pre_ping`, session cookie, `@auth_required()`), the same server settings and "
        "database, one signed-in page of the Profile page's size. Once both have their account "
        "and are signed in, the database's planner statistics are gathered (ANALYZE, every "
        "table), as autovacuum keeps them in a database in service: on tables made a moment "
        "before, PostgreSQL read the Backup Codes page's used codes with a bitmap scan that cost "
        "it 30 to 60 µs more CPU per request.",
        "",
        "| Request | Bytes | Requests/s |",
        "|---|---|---|",
        f"| Profile `/pages/` | {sizes['Profile']} | {shown(rates['Profile'], 0)} |",
        f"| Backup Codes `{BACKUP_CODES_PAGE}` | {sizes['Backup Codes']} | "
        f"{shown(rates['Backup Codes'], 0)} |",
        f"| Bare route, signed out | {sizes['Profile']} | {shown(rates['bare, signed out'], 0)} |",
        f"| Bare route, signed in | {sizes['Profile']} | {shown(rates['bare, signed in'], 0)} |",
        f"| Floor: bare route + the lookup's round trip | {sizes['Profile']} | "
        f"{shown(rates['floor'], 0)} |",
        f"| Peer's signed-in page | {sizes['peer']} | {shown(rates['peer'], 0)} |",
        "",
        "| Ratio (within each round) | Median ± half the spread |",
        "|---|---|",
    ]
    lines += [f"| {label} | {shown(figure)} |" for label, figure in ratios.items()]
    if all(figure.values for figure in cpu.values()):
        lines += [
            "",
            "The server's CPU time per request in the same runs: its 2 workers, and every "
            "PostgreSQL process on this machine, read from /proc before and after each figure "
            "(the load generator's own CPU is not counted). A rate moves with whatever else the "
            "machine does; the work a request costs moves less. The ratios read as the rate "
            "ratios do: the other request's CPU ÷ the page's.",
            "",
            "| Request | Server CPU per request |",
            "|---|---|",
        ]
        lines += [f"| {label} | {ms(figure)} |" for label, figure in cpu.items()]
        lines += [
            "",
            "| Ratio from CPU per request (within each round) | Median ± half the spread |",
            "|---|---|",
        ]
        lines += [f"| {label} | {shown(figure)} |" for label, figure in cpu_ratios.items()]
    lines += [
        "",
        f"Bad responses (not 200, or socket errors) in all rounds: {bad}.",
        "",
        f"### In-process ({batch_rounds} rounds of {BATCH} requests each)",
        "",
        "Flask's test client, no HTTP server; the same database. "
        + (
            "Round trips: counted in libpq's own trace of the app's connections "
            "(`bench/roundtrips.py`): every message sent and answered, so a pool's ping, BEGIN, "
            "COMMIT and ROLLBACK each count as one; averaged over 21 requests after 10 to warm "
            "up (the driver prepares a statement on its 5th use: one more round trip, once)."
            if postgres
            else "Statements: counted by SQLite's driver (its trace callback)."
        ),
        "",
        f"| Request | Time per request | {trip_word} per request |",
        "|---|---|---|",
    ]
    for label in (
        "bare, signed out",
        "bare, signed in",
        "floor",
        "Profile",
        "Backup Codes",
        "peer",
    ):
        count = trips.get(label, (float("nan"), []))[0]
        lines.append(f"| {label} | {ms(times[label])} | {count:g} |")
    lines += [
        f"| signed in ÷ signed out | {shown(ratio_in, 2, '×')} | |",
        f"| floor ÷ signed out | {shown(times['floor ÷ signed out'], 2, '×')} | |",
        f"| signed in ÷ floor | {shown(times['signed in ÷ floor'], 2, '×')} | |",
        "",
        "What one signed-in request (the bare route) sends, round trip by round trip:",
        "",
    ]
    lines += [f"{n}. `{wait[:160]}`" for n, wait in enumerate(trips["bare, signed in"][1], 1)]
    lines += [
        "",
        "Before issue 17 the same request made 4 round trips (the pool's ping, BEGIN, the "
        "SELECT, ROLLBACK); the peer's page makes "
        f"{trips.get('peer', (float('nan'), []))[0]:g}.",
        "",
        "### Where the Python time of a signed-in request goes (`bench/profile_signed_in.py`)",
        "",
        *profile,
    ]
    bench.sections.append("\n".join(lines))


def ms(figure: Figure) -> str:
    return f"{figure.median * 1000:.3f} ms ± {figure.spread * 50:.0f} %" + (
        "" if figure.spread < SPREAD_TARGET else " (over 10 %)"
    )


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


def section_demo(bench: Bench) -> None:
    """bench/demo_sandboxes.py's section: "Try the demo" next to a sign-up (it also runs alone,
    on a database of its own)."""
    bench.sections.append(demo_sandboxes.demo_section("`make bench`"))


# --- the report --------------------------------------------------------------------------------


def write_results(bench: Bench, started: float, wall: float) -> None:
    cpus = os.cpu_count() or 1
    tool = "wrk" if load.wrk_available() else "Python threads + http.client"
    header = [
        "# Sparekey benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`; section 7 by `bench/code_timing.py` and section "
        "8 by `bench/demo_sandboxes.py`, which also run alone). Every ratio compares two "
        "measurements from this one run on this one machine; absolute numbers only mean "
        "something next to each other. The database is "
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
        ("8 demo sandboxes", section_demo),
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
