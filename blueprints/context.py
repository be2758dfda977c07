"""The one place the web layer turns a request into what a use case is given."""

from __future__ import annotations

from dataclasses import replace

from flask import Flask, current_app, request

from blueprints.browser import device_tokens
from security.context import Client, Context

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
    the User-Agent and the device cookie's tokens, read once here and handed to the domain as
    data."""
    return Client.of(request.remote_addr, request.headers.get("User-Agent"), device_tokens())


def request_context() -> Context:
    """The Context of this request: the app's keys and limits, this request's client."""
    return replace(app_context_of(current_app), client=request_client())
