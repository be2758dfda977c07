"""The guided tour of both journeys, and the help page."""

from flask import Blueprint

bp = Blueprint("tour", __name__)

from blueprints.tour import journeys, routes  # noqa: E402, F401

# Every page can show the tour's banner and callouts: the tour registers its own helpers.
bp.add_app_template_global(journeys.banner, "tour_banner")
bp.add_app_template_global(journeys.callout_html, "tour_callout")
bp.add_app_template_global(journeys.target, "target")
bp.add_app_template_global(journeys.page_url, "tour_page_url")
