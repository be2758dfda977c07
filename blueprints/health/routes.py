"""GET /healthz: 200 when this process can reach the database, 503 when it cannot."""

from __future__ import annotations

import logging

from flask import jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from blueprints.health import bp
from extensions import db

log = logging.getLogger("sparekey.health")


@bp.route("/healthz")
def healthz():
    """One `SELECT 1` through the app's own session and pool; no login, no cookie, no secrets."""
    try:
        db.session.execute(text("SELECT 1")).scalar_one()
    except SQLAlchemyError as error:
        db.session.rollback()
        # The exception's class only: its text may name the host or the user of the database.
        log.warning("health check failed: %s", type(error).__name__)
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok"), 200
