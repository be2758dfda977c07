"""The health blueprint: /healthz (liveness) and /readyz (readiness) for load balancers and
process managers."""

from flask import Blueprint

bp = Blueprint("health", __name__)

from blueprints.health import routes  # noqa: E402, F401
