"""Password hashing (peppered pre-hash, then bcrypt) and the password policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from functools import cache
from pathlib import Path

import bcrypt

from security.keys import KeyRing

MIN_LENGTH = 8
MAX_LENGTH = 1000
SITE_WORDS = ("sparekey",)
_COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt"


def _prehash(keys: KeyRing, password: str) -> bytes:
    """44 bytes of base64(HMAC-SHA256): bcrypt's 72-byte limit never truncates or raises."""
    normalised = unicodedata.normalize("NFKC", password).encode("utf-8")
    return base64.b64encode(hmac.new(keys.pepper, normalised, hashlib.sha256).digest())


def hash_password(keys: KeyRing, password: str) -> str:
    salt = bcrypt.gensalt(rounds=keys.password_cost)
    return bcrypt.hashpw(_prehash(keys, password), salt).decode("ascii")


def verify_password(keys: KeyRing, password: str, stored_hash: str | None) -> bool:
    """One bcrypt check whether or not there is a stored hash, so unknown users cost the same."""
    target = stored_hash or _dummy_hash(keys.password_cost)
    matched = bcrypt.checkpw(_prehash(keys, password), target.encode("ascii"))
    return matched and stored_hash is not None


@cache
def _dummy_hash(cost: int) -> str:
    return bcrypt.hashpw(b"no such account", bcrypt.gensalt(rounds=cost)).decode("ascii")


@cache
def common_passwords() -> frozenset[str]:
    return frozenset(_COMMON_PASSWORDS_FILE.read_text().split())


def password_problem(password: str, username: str = "", email: str = "") -> str | None:
    """The reason a new password is refused, or None. Length counts Unicode code points."""
    length = len(unicodedata.normalize("NFC", password))
    if length < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if length > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    folded = unicodedata.normalize("NFKC", password).casefold()
    if folded in common_passwords():
        return "This password is too common. Choose one that is harder to guess."
    squeezed = folded.replace(" ", "")
    context = [w for w in (username.casefold(), email.casefold().split("@")[0]) if len(w) >= 3]
    for word in [*context, *SITE_WORDS]:
        if word and (word in squeezed and len(squeezed) - len(word) < 4):
            return "This password is too close to your username or the site name."
    return None
