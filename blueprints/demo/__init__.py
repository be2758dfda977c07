""" "Try the demo": a sandbox account per visitor, its banner, and its end."""

from flask import Blueprint

bp = Blueprint("demo", __name__)

from blueprints.demo import routes  # noqa: E402, F401
