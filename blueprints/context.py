"""The one place the web layer turns a request into what a use case is given."""

from __future__ import annotations

from flask import Flask, current_app, request

from extensions import db
from security.context import Client, Context

EXTENSION = "sparekey"


def install(app: Flask, base: Context) -> None:
    """Keep the app's keys, limits and timeouts (a Context without a database session)."""
    app.extensions[EXTENSION] = base


def app_context_of(app: Flask) -> Context:
    """The app's Context with the current database session and no client (commands, tests)."""
    base: Context = app.extensions[EXTENSION]
    return Context(
        db=db.session,
        keys=base.keys,
        limits=base.limits,
        timeouts=base.timeouts,
        pending_login_seconds=base.pending_login_seconds,
    )


def request_client() -> Client:
    """`request.remote_addr` (forwarding headers count only through the TRUSTED_PROXIES fix-up)
    and the User-Agent, read once here and handed to the domain as data."""
    return Client.of(request.remote_addr, request.headers.get("User-Agent"))


def request_context() -> Context:
    """The Context of this request: the app's keys and limits, this request's client."""
    base: Context = current_app.extensions[EXTENSION]
    return Context(
        db=db.session,
        keys=base.keys,
        limits=base.limits,
        timeouts=base.timeouts,
        client=request_client(),
        pending_login_seconds=base.pending_login_seconds,
    )
