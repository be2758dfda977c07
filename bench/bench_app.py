"""The real app plus a bare route, for benchmarks only.

gunicorn -c gunicorn.conf.py "bench.bench_app:create_bench_app()"

`/bench/bare/<size>` answers `size` bytes with no template and no database, through the same
server, middleware and request hooks as the real pages, so a page's rate can be compared with
the fastest this server can answer a response of the same size.

`/bench/floor/<size>?session=<digest>` is the bare route plus the one round trip a signed-in
request cannot do without: the session lookup's own statement (`security/sessions.py`), for the
session row `digest`, on a pooled connection of the app's engine, sent by the driver with no
cookie, no Flask-Login and no ORM. It is what the hardware allows a signed-in request: the
session code of a real one costs what it adds on top of it.

Per-IP limits are off (a load generator is one address). `BENCH_FAILURES_BEFORE_BACKOFF` lifts
the per-account back-off for the double-spend run, so that every submission reaches the UPDATE.
"""

from __future__ import annotations

import os

from flask import Flask, Response

from app import create_app


def bare(size: int) -> Response:
    return Response(b"x" * min(size, 1_000_000), mimetype="text/html")


def floor(size: int) -> Response:
    from flask import request

    from extensions import db
    from security.sessions import _lookup_for

    digest = request.args.get("session", "")
    lookup = _lookup_for(db.engine.dialect)
    connection = db.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(lookup.sql, lookup.parameters(digest), **lookup.options)
        found = cursor.fetchall()
        cursor.close()
    finally:
        connection.close()
    if len(found) != 1:
        return Response(b"no such session", status=404, mimetype="text/plain")
    return bare(size)


def add_bare_route(app: Flask) -> Flask:
    if "bench_bare" not in app.view_functions:
        app.add_url_rule("/bench/bare/<int:size>", "bench_bare", bare)
        app.add_url_rule("/bench/floor/<int:size>", "bench_floor", floor)
    return app


def create_bench_app() -> Flask:
    overrides: dict = {"RATELIMIT_ENABLED": False}
    if os.environ.get("BENCH_FAILURES_BEFORE_BACKOFF"):
        overrides["FAILURES_BEFORE_BACKOFF"] = int(os.environ["BENCH_FAILURES_BEFORE_BACKOFF"])
    return add_bare_route(create_app(overrides))
