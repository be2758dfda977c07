"""The auth blueprint."""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/accounts")

from blueprints.auth import routes  # noqa: E402, F401
