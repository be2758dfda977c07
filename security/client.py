"""Who is asking: the client IP and a short device description, from the request."""

from __future__ import annotations

from flask import has_request_context, request


def client_ip() -> str:
    """`request.remote_addr`; forwarding headers count only through the TRUSTED_PROXIES fix-up."""
    if not has_request_context():
        return ""
    return (request.remote_addr or "")[:45]


def client_user_agent() -> str:
    if not has_request_context():
        return ""
    return (request.headers.get("User-Agent") or "").replace("\x00", "")[:300]


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"))
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_device(user_agent: str) -> str:
    """ "Chrome on Android" from a User-Agent string; good enough to recognise one's own devices."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    if browser is None and "Safari/" in user_agent:
        browser = "Safari"
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"
