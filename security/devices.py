"""A short description of a device ("Chrome on Android") from its User-Agent string."""

from __future__ import annotations

from ua_parser import parse as parse_user_agent


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
