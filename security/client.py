"""Who is asking: the client IP and a short device description, from the request."""

from __future__ import annotations

from flask import has_request_context, request
from ua_parser import parse as parse_user_agent


def client_ip() -> str:
    """`request.remote_addr`; forwarding headers count only through the TRUSTED_PROXIES fix-up."""
    if not has_request_context():
        return ""
    return (request.remote_addr or "")[:45]


def client_user_agent() -> str:
    if not has_request_context():
        return ""
    return (request.headers.get("User-Agent") or "").replace("\x00", "")[:300]


def describe_device(user_agent: str) -> str:
    """Name a device like "Chrome on Android" from its User-Agent string."""
    if not user_agent:
        return "Unknown device"
    parsed = parse_user_agent(user_agent)
    browser = parsed.user_agent.family if parsed.user_agent else None
    system = parsed.os.family if parsed.os else None
    browser = None if browser in (None, "Other") else browser
    system = None if system in (None, "Other") else system
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"
