"""GET /metrics: answered only with `Authorization: Bearer <METRICS_TOKEN>`; otherwise the same
404 as any address that does not exist, so the endpoint is not even seen to be there."""

from __future__ import annotations

import hmac

from flask import Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from blueprints.metrics import bp, instruments


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def may_scrape() -> bool:
    expected = current_app.config.get("METRICS_TOKEN")
    given = bearer_token()
    if not expected or given is None:
        return False
    # Constant time: how much of a guess was right does not show in how long the answer takes.
    return hmac.compare_digest(given.encode(), str(expected).encode())


@bp.route("/metrics")
def metrics():
    if not may_scrape():
        abort(404)
    return Response(instruments.scrape(), content_type=CONTENT_TYPE_LATEST)
