"""Where the Python time of a signed-in request goes, by function.

`python -m bench.profile_signed_in` prints it; `bench/run.py` writes it into bench/RESULTS.md.

cProfile over the same bare route (`bench/bench_app.py`) requested signed out and signed in, in
this process through Flask's test client (no HTTP server), and over the Profile page. What the
session costs is the difference between the first two: by area (the cookie, Flask-Login, the
ORM, the driver ...) and by function. The profiler slows every call down, so the absolute
figures are larger than unprofiled ones (`bench/run.py` section 3 has those); what it shows is
where the time goes, in proportion.

Database: BENCH_DATABASE_URL, as for `bench/run.py`.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUESTS = 1000
WARM_UP = 200
LARGEST = 15

# Where a function's own time is counted, by the file it is in (the first match wins).
AREAS = (
    ("itsdangerous/", "session cookie (itsdangerous: signature, JSON)"),
    ("flask/sessions.py", "session cookie (Flask's interface)"),
    ("flask_login/", "Flask-Login"),
    ("flask_wtf/", "Flask-WTF (CSRF)"),
    ("sqlalchemy/orm/", "SQLAlchemy ORM (session, loading objects)"),
    ("sqlalchemy/pool/", "SQLAlchemy pool"),
    ("sqlalchemy/", "SQLAlchemy Core (statement, result)"),
    ("psycopg/", "driver (psycopg), waiting on PostgreSQL included"),
    ("jinja2/", "templates (Jinja2)"),
    ("markupsafe/", "templates (Jinja2)"),
    ("werkzeug/test.py", "test client"),
    ("flask/testing.py", "test client"),
    ("werkzeug/", "Werkzeug (request, response, routing)"),
    ("flask/", "Flask (dispatch, hooks, contexts)"),
    ("blinker/", "Flask (dispatch, hooks, contexts)"),
    ("flask_limiter/", "Flask-Limiter"),
    ("limits/", "Flask-Limiter"),
    ("prometheus_client/", "metrics (prometheus-client)"),
    ("pythonjsonlogger/", "logs"),
    ("logging/", "logs"),
    ("/security/", "Sparekey: security/"),
    ("/blueprints/", "Sparekey: blueprints/"),
    ("/main/app.py", "Sparekey: app.py"),
    ("app.py", "Sparekey: app.py"),
    ("logs.py", "logs"),
    ("extensions.py", "Sparekey: extensions.py"),
    ("models.py", "Sparekey: models.py"),
)


def area_of(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "Python built-ins (hashing, time, dict ...)"
    for fragment, area in AREAS:
        if fragment in filename:
            return area
    if "/lib/python3" in filename and "site-packages" not in filename:
        return "Python standard library"
    return "other"


def label_of(function: tuple[str, int, str]) -> str:
    filename, line, name = function
    if filename.startswith("~") or filename.startswith("<"):
        return name
    short = filename
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in short:
            short = short.split(marker, 1)[1]
    return f"{short}:{line}({name})"


@dataclass
class Profiled:
    """Per request: own time by area, and own and cumulative time by function (seconds)."""

    requests: int
    by_area: dict[str, float]
    own: dict[str, float]
    cumulative: dict[str, float]
    calls: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.by_area.values())


def profile(client, path: str, requests: int = REQUESTS) -> Profiled:
    for _ in range(WARM_UP):
        client.get(path)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    by_area: dict[str, float] = defaultdict(float)
    own: dict[str, float] = defaultdict(float)
    cumulative: dict[str, float] = defaultdict(float)
    calls: dict[str, float] = defaultdict(float)
    for function, (_, primitive, own_time, cumulative_time, _) in stats.items():
        label = label_of(function)
        by_area[area_of(function[0])] += own_time / requests
        own[label] += own_time / requests
        cumulative[label] += cumulative_time / requests
        calls[label] += primitive / requests
    return Profiled(requests, dict(by_area), dict(own), dict(cumulative), dict(calls))


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


def profile_tables(signed_out: Profiled, signed_in: Profiled, page: Profiled, page_label: str):
    """Markdown lines: own time by area, then the functions the session adds the most to."""
    lines = [
        f"Profiled (cProfile, {signed_in.requests} requests each, after {WARM_UP} to warm up): "
        f"the bare route signed out {us(signed_out.total)}, signed in {us(signed_in.total)}, "
        f"{page_label} {us(page.total)} per request (the profiler's own cost included).",
        "",
        "Own time per request by area:",
        "",
        f"| Area | Bare, signed out | Bare, signed in | What the session adds | {page_label} |",
        "|---|---|---|---|---|",
    ]
    areas = sorted(
        set(signed_in.by_area) | set(signed_out.by_area) | set(page.by_area),
        key=lambda a: -page.by_area.get(a, 0.0),
    )
    for area in areas:
        out, into, on_page = (p.by_area.get(area, 0.0) for p in (signed_out, signed_in, page))
        if max(out, into, on_page) < 2e-6:
            continue
        lines.append(f"| {area} | {us(out)} | {us(into)} | {us(into - out):>6} | {us(on_page)} |")
    added = sorted(
        ((signed_in.own[f] - signed_out.own.get(f, 0.0), f) for f in signed_in.own), reverse=True
    )
    lines += [
        "",
        f"The {LARGEST} functions whose own time the session adds the most to (signed in minus "
        "signed out, per request):",
        "",
        "| Function | Own time added | Calls per request, signed in |",
        "|---|---|---|",
    ]
    for extra, function in added[:LARGEST]:
        lines.append(f"| `{function}` | {us(extra)} | {signed_in.calls.get(function, 0.0):g} |")
    own_on_page = sorted(((t, f) for f, t in page.own.items()), reverse=True)
    lines += [
        "",
        f"The {LARGEST} functions with the most own time on the {page_label}:",
        "",
        "| Function | Own time | Calls per request |",
        "|---|---|---|",
    ]
    for own_time, function in own_on_page[:LARGEST]:
        lines.append(f"| `{function}` | {us(own_time)} | {page.calls.get(function, 0.0):g} |")
    return lines


def profile_app(app, username: str, password: str, size: int, page: str):
    """(signed out, signed in, page) profiles of `app`, signing `username` in."""
    from bench.bench_app import add_bare_route
    from tools.inprocess import Person

    add_bare_route(app)
    person = Person(app.test_client())
    if person.login(username, password).status_code != 302:
        raise RuntimeError(f"could not log in as {username}")
    bare = f"/bench/bare/{size}"
    signed_out = profile(app.test_client(), bare)
    signed_in = profile(person.client, bare)
    on_page = profile(person.client, page)
    return signed_out, signed_in, on_page


def main() -> None:
    import secrets

    from app import create_app
    from bench.run import PASSWORD, make_users, postgres_url, reset_database

    postgres, _ = postgres_url()
    if postgres:
        os.environ["DATABASE_URL"] = postgres
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    os.environ["SPAREKEY_ENV"] = "development"
    app = create_app({"RATELIMIT_ENABLED": False, "PASSWORD_BCRYPT_COST": 4})
    reset_database(app)
    make_users(app, ["pages"], codes=True)
    signed_out, signed_in, page = profile_app(app, "pages", PASSWORD, 2313, "/pages/")
    print("\n".join(profile_tables(signed_out, signed_in, page, "Profile page")))


if __name__ == "__main__":
    main()
