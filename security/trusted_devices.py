"""Trusted devices (OWASP's device cookies): a browser that has signed in to an account carries a
random token for it, and its attempts count on a counter of its own. Strangers' failures, counted
on the account's counter for every other client, can never slow or close it."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from clock import now
from models import TrustedDevice
from security.rows import rows_changed

# A device is trusted this long after it last signed in; its cookie lives as long.
DEVICE_LIFETIME = timedelta(days=365)
# A browser keeps the tokens of this many accounts at most.
MAX_TOKENS = 5
MAX_TOKEN_LENGTH = 64


def device_digest(token: str) -> str:
    """Rows hold SHA-256 of the cookie's token: a database dump trusts no browser."""
    return hashlib.sha256(token.encode()).hexdigest()


def device_key(digest: str) -> str:
    """The failure counter of one trusted device of an account."""
    return f"device:{digest}"


def trusted_device(
    db_session: Session, user_id: int, tokens: tuple[str, ...]
) -> TrustedDevice | None:
    """The device row one of the browser's tokens names for this account, if still trusted."""
    digests = [device_digest(t) for t in tokens[:MAX_TOKENS] if 0 < len(t) <= MAX_TOKEN_LENGTH]
    if not digests:
        return None
    device = db_session.scalar(
        select(TrustedDevice).where(TrustedDevice.id.in_(digests), TrustedDevice.user_id == user_id)
    )
    if device is None or now() - device.last_used_at > DEVICE_LIFETIME:
        return None
    return device


def trust_this_device(db_session: Session, user_id: int, tokens: tuple[str, ...]) -> str | None:
    """After a sign-in: the browser's device is trusted for the account, and used now. Returns a
    new token for its cookie, or None when it already had one."""
    device = trusted_device(db_session, user_id, tokens)
    if device is not None:
        device.last_used_at = now()
        return None
    token = secrets.token_urlsafe(32)
    db_session.add(TrustedDevice(id=device_digest(token), user_id=user_id))
    return token


def has_devices(db_session: Session, user_id: int) -> bool:
    return (
        db_session.scalar(select(TrustedDevice.id).where(TrustedDevice.user_id == user_id).limit(1))
        is not None
    )


def prune_devices(db_session: Session) -> int:
    """Delete devices not used for a year: their cookies have expired too."""
    cutoff = now() - DEVICE_LIFETIME
    return rows_changed(
        db_session.execute(delete(TrustedDevice).where(TrustedDevice.last_used_at < cutoff))
    )
