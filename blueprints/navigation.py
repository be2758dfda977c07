"""Where a page may send the browser next, and which pages send no Referer."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import make_response, request


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None."""
    if not target or len(target) > 500:
        return None
    if any(ord(ch) < 33 or ch == "\\" for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def path_of(url: str | None) -> str | None:
    """The path of a URL on this host (a Referer, say), else None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.netloc and parts.netloc != request.host:
        return None
    return parts.path


def no_referrer(view):
    """Pages that show codes or recovery forms send no Referer anywhere."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        response = make_response(view(*args, **kwargs))
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return wrapped
