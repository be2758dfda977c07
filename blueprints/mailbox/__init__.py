"""/dev/mailbox/: the mail the development server saved under instance/mail/ (development only)."""

from flask import Blueprint

bp = Blueprint("mailbox", __name__)

from blueprints.mailbox import routes  # noqa: E402, F401
