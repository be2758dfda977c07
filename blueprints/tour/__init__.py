"""The guided tour of both journeys, and the help page."""

from flask import Blueprint

bp = Blueprint("tour", __name__)

from blueprints.tour import routes  # noqa: E402, F401
