"""The metrics blueprint: Prometheus text at /metrics for whoever holds METRICS_TOKEN, and the
request hooks that count and time every answer."""

from __future__ import annotations

from flask import Blueprint, Flask, g, request, request_started

from blueprints.metrics import instruments

bp = Blueprint("metrics", __name__)


def start_the_clock(sender: Flask, **extra) -> None:
    g.metrics_started = instruments.request_started()


def count_requests(app: Flask) -> None:
    """Time every request from when Flask starts it (before any request hook, the limiter's and
    the CSRF check's included) and count its answer by endpoint and status; also count the
    security events' log lines."""
    instruments.count_security_events()
    request_started.connect(start_the_clock, app)

    @app.after_request
    def count_the_answer(response):
        instruments.request_finished(
            request.endpoint, request.method, response.status_code, g.get("metrics_started")
        )
        return response


from blueprints.metrics import routes  # noqa: E402, F401
