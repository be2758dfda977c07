"""The one place the web layer turns a request into what a use case is given."""

from __future__ import annotations

from dataclasses import replace

from flask import Flask, current_app, request, session
from flask_mailman import EmailMessage

from blueprints.browser import device_tokens
from blueprints.metrics import instruments
from security.context import Client, Context
from security.notices import Outbox

EXTENSION = "sparekey"


def install(app: Flask, base: Context) -> None:
    """Keep the app's Context: its database session (Flask-SQLAlchemy's scoped session, so each
    request gets its own), keys, limits and timeouts, with no client."""
    app.extensions[EXTENSION] = base


def app_context_of(app: Flask) -> Context:
    """The app's Context with no client (commands, tests); use inside an app context."""
    return app.extensions[EXTENSION]


def request_client() -> Client:
    """`request.remote_addr` (forwarding headers count only through the TRUSTED_PROXIES fix-up),
    the User-Agent, the device cookie's tokens and the session token the cookie holds (what
    Flask-Login stores as `_user_id`: app.py:load_user), read once here and handed to the domain
    as data."""
    token = session.get("_user_id")
    return Client.of(
        request.remote_addr,
        request.headers.get("User-Agent"),
        device_tokens(),
        token if isinstance(token, str) else None,
    )


class FlaskMailer:
    """The domain's Mailer, sent through Flask-Mailman (SMTP, or files in development)."""

    def send(self, to: str, subject: str, body: str) -> None:
        """Send, counting it as sent or failed (sparekey_mails_total); a failure still raises."""
        try:
            EmailMessage(subject=subject, body=body, to=[to]).send()
        except Exception:
            instruments.mail_failed()
            raise
        instruments.mail_sent()


def site_address() -> str:
    """The site's address for sheets and mailed links: SITE_URL, else this request's host."""
    return current_app.config.get("SITE_URL") or request.host_url.rstrip("/")


def request_context() -> Context:
    """The Context of this request: the app's keys and limits, this request's client, and mail
    to the owner."""
    outbox = Outbox(mailer=FlaskMailer(), site=site_address())
    return replace(app_context_of(current_app), client=request_client(), outbox=outbox)
