"""Links mailed to the owner: signed with the key ring's link key, some of them good once."""

from __future__ import annotations

import secrets

from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import UsedLink
from security.keys import KeyRing
from security.trusted_devices import device_digest

# "Wasn't you? Secure your account" in every notice mail: good once, for 7 days, while the
# account still has the verified address it was sent to.
SECURE_ACCOUNT = "secure the account"
SECURE_LINK_DAYS = 7


def signer(keys: KeyRing, purpose: str) -> URLSafeTimedSerializer:
    """A signer per purpose: a link made for one thing never works for another."""
    return URLSafeTimedSerializer(keys.link_key, salt=purpose)


def new_nonce() -> str:
    """What makes a single-use link single: recorded when it is used."""
    return secrets.token_urlsafe(16)


def spend_once(db_session: Session, purpose: str, claims: dict) -> bool:
    """Record that the link with these (signed, decoded) claims was used, in the use case's
    transaction; False (after a rollback) if it was used before or has no nonce. The nonce, not
    the token's text: a signature can be spelled several ways that all verify."""
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        return False
    db_session.add(UsedLink(id=device_digest(f"{purpose}:{nonce}")))
    try:
        db_session.flush()
    except IntegrityError:
        db_session.rollback()
        return False
    return True
