"""GET /healthz: liveness, 200 whenever this process answers (nothing else is asked).
GET /readyz: readiness, 200 when the database answers within 2 seconds with its schema at the
migrations' head and Redis answers (when the limits are kept there); 503 within 3 seconds
otherwise. Neither needs a log-in or sets a cookie; the body names each check with "ok" or
"failed" and never a host name or an error's text."""

from __future__ import annotations

from flask import current_app, jsonify

from blueprints.health import bp
from blueprints.health.readiness import readiness_of


@bp.route("/healthz")
def healthz():
    """The process is alive and serving: a load balancer's or supervisor's restart signal."""
    return jsonify(status="ok"), 200


@bp.route("/readyz")
def readyz():
    """Whether this server should be sent traffic now."""
    readiness = readiness_of(current_app)
    results = readiness.results()
    failed = tuple(name for name, passed in results.items() if not passed)
    readiness.note(failed)
    body = {
        "status": "unavailable" if failed else "ok",
        "checks": {name: "ok" if passed else "failed" for name, passed in results.items()},
    }
    return jsonify(body), 503 if failed else 200
