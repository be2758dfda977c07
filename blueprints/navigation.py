"""Where a page may send the browser next, and which pages send no Referer."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import make_response, request

# Longer than any page of this site with its query; anything longer is not one of ours.
MAX_TARGET_LENGTH = 500
WEB_SCHEMES = ("http", "https")


def local_path(value: str | None) -> str | None:
    """The page of this site that `value` names, rebuilt as a path (and `?query`), else None.

    `value` is a Referer (an http or https address on this request's host) or a `next` value (a
    path). What comes back is made again from the parsed parts: no scheme, no host, no fragment,
    one leading slash, so a browser can only read it as a page here. Anything else is None, and
    nothing raises: not an address that cannot be parsed, nor control characters, backslashes,
    `//` (another host without a scheme), other hosts, other schemes or over-long values.
    """
    if not value or len(value) > MAX_TARGET_LENGTH or value.startswith("//"):
        return None
    # Browsers drop tabs and newlines inside addresses and read a backslash as a slash, so
    # "/\tevil.example" or "/\\evil.example" could become "//evil.example".
    if any(ord(ch) < 33 or ch == "\\" or not ch.isprintable() for ch in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        # An unclosed "[" in the host, say.
        return None
    if parts.scheme or parts.netloc:
        if parts.scheme.lower() not in WEB_SCHEMES or not parts.netloc:
            return None
        if parts.netloc.lower() != request.host.lower():
            return None
    path = parts.path
    if not path.startswith("/") or path.startswith("//"):
        return None
    return f"{path}?{parts.query}" if parts.query else path


def safe_next(target: str | None) -> str | None:
    """A `next` value: the path on this site it names, rebuilt (see `local_path`), else None.

    Only a path is accepted here, never a full address, even one on this host."""
    if not target or not target.startswith("/"):
        return None
    return local_path(target)


def back_to(referrer: str | None, fallback: str) -> str:
    """Where "go back" goes: the page of this site the Referer names, else `fallback`."""
    return local_path(referrer) or fallback


def no_referrer(view):
    """Pages that show codes or recovery forms send no Referer anywhere."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        response = make_response(view(*args, **kwargs))
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return wrapped
