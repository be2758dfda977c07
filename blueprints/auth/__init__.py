"""The auth blueprint."""

from flask import Blueprint

bp = Blueprint("auth", __name__, url_prefix="/accounts")

from blueprints.auth import routes, secure_link  # noqa: E402, F401
