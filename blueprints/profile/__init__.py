"""The profile blueprint."""

from flask import Blueprint

bp = Blueprint("profile", __name__)

from blueprints.profile import routes  # noqa: E402, F401
