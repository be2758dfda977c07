"""The pepper and bcrypt costs, derived once from configuration and kept outside the database."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from flask import current_app


@dataclass(frozen=True)
class Hasher:
    pepper: bytes
    password_cost: int
    code_cost: int


def hasher_from_config(config: dict) -> Hasher:
    if config.get("PEPPER"):
        pepper = config["PEPPER"].encode()
    else:
        pepper = hmac.new(
            config["SECRET_KEY"].encode(), b"sparekey pepper v1", hashlib.sha256
        ).digest()
    return Hasher(
        pepper=pepper,
        password_cost=int(config["PASSWORD_BCRYPT_COST"]),
        code_cost=int(config["BACKUP_CODE_BCRYPT_COST"]),
    )


def current_hasher() -> Hasher:
    return current_app.extensions["sparekey_hasher"]
