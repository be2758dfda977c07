"""The key ring: the pepper, the bcrypt costs and the app-secret key, derived once from
configuration and kept outside the database."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True)
class KeyRing:
    """The keys and costs every secret check needs; none of it lives in the database."""

    pepper: bytes
    password_cost: int
    code_cost: int
    # Fernet key (urlsafe base64 of 32 bytes) that encrypts what must be read back: the
    # authenticator-app secrets, and a new sheet's codes while it is being saved.
    encryption_key: bytes = b""
    # Signs the links mailed to the owner (verify an address); derived from SECRET_KEY.
    link_key: bytes = b""


def keyring_from_config(config: dict) -> KeyRing:
    if config.get("PEPPER"):
        pepper = pepper_from_setting(config["PEPPER"])
    else:
        pepper = hmac.new(
            config["SECRET_KEY"].encode(), b"sparekey pepper v1", hashlib.sha256
        ).digest()
    if config.get("TOTP_ENCRYPTION_KEY"):
        encryption_key = config["TOTP_ENCRYPTION_KEY"].encode()
    else:
        derived = hmac.new(
            config["SECRET_KEY"].encode(), b"sparekey totp key v1", hashlib.sha256
        ).digest()
        encryption_key = base64.urlsafe_b64encode(derived)
    link_key = hmac.new(
        config["SECRET_KEY"].encode(), b"sparekey links v1", hashlib.sha256
    ).digest()
    return KeyRing(
        link_key=link_key,
        pepper=pepper,
        password_cost=int(config["PASSWORD_BCRYPT_COST"]),
        code_cost=int(config["BACKUP_CODE_BCRYPT_COST"]),
        encryption_key=encryption_key,
    )


def pepper_from_setting(value: str) -> bytes:
    """`hex:` and 64 hex digits are the raw 32 bytes (the form the derived pepper is printed
    in, so it can be pinned before SECRET_KEY is rotated); any other text is used as UTF-8."""
    if value.startswith("hex:"):
        return bytes.fromhex(value[4:])
    return value.encode()
