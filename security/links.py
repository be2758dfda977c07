"""Links mailed to the owner: signed with the key ring's link key, some of them good once."""

from __future__ import annotations

from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import UsedLink
from security.keys import KeyRing
from security.trusted_devices import device_digest


def signer(keys: KeyRing, purpose: str) -> URLSafeTimedSerializer:
    """A signer per purpose: a link made for one thing never works for another."""
    return URLSafeTimedSerializer(keys.link_key, salt=purpose)


def spend_once(db_session: Session, token: str) -> bool:
    """Record that this link was used, in the use case's transaction; False (after a rollback)
    if it was used before."""
    db_session.add(UsedLink(id=device_digest(token)))
    try:
        db_session.flush()
    except IntegrityError:
        db_session.rollback()
        return False
    return True
