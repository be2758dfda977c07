"""Authenticator apps (TOTP, RFC 6238): secrets, QR codes, and one-time acceptance of codes."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import segno
from cryptography.fernet import Fernet
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from models import User
from security.backup_codes import CodeFormatError, typed_digits
from security.keys import KeyRing
from security.rows import rows_changed

ISSUER = "Sparekey"
STEP_SECONDS = 30
DIGITS = 6
# One step either side: a phone whose clock is up to 30 seconds off still works.
DRIFT_STEPS = 1
MAX_INPUT_LENGTH = 20


class TotpFormatError(CodeFormatError):
    """The input is not shaped like an app code; it is not counted as a guess."""


def new_secret() -> str:
    """160 random bits in base32, the size authenticator apps expect."""
    return pyotp.random_base32()


def encrypt_secret(keys: KeyRing, secret: str) -> str:
    return Fernet(keys.encryption_key).encrypt(secret.encode()).decode("ascii")


def decrypt_secret(keys: KeyRing, token: str) -> str:
    return Fernet(keys.encryption_key).decrypt(token.encode("ascii")).decode()


def provisioning_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def grouped(secret: str) -> str:
    """The key in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_svg(uri: str) -> str:
    """An inline SVG of the QR code: paths and attributes only, so the CSP needs no exception."""
    return segno.make(uri, error="m").svg_inline(
        scale=5,
        border=4,
        dark="#000",
        light="#fff",
        svgclass="qr",
        lineclass=None,
        omitsize=True,
    )


def normalise_totp_input(raw: str | None) -> str:
    """Drop spaces and dashes; accept exactly six ASCII digits, or raise TotpFormatError."""
    return typed_digits(
        raw,
        DIGITS,
        MAX_INPUT_LENGTH,
        TotpFormatError,
        (
            "Enter the 6-digit code from your authentication app.",
            "That is too long. The code from your app has 6 digits.",
            "The code from your app is 6 digits, like 123 456.",
        ),
    )


def time_step(at: datetime) -> int:
    """The RFC 6238 counter for a naive-UTC time."""
    seconds = int((at - datetime(1970, 1, 1)).total_seconds())
    return seconds // STEP_SECONDS


def matching_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step (within the allowed drift) whose code equals `code`, or None."""
    totp = pyotp.TOTP(secret)
    current = time_step(at)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def accept_code(db_session: Session, keys: KeyRing, user: User, code: str, at: datetime) -> bool:
    """Check `code` against the account's app and remember its step so it never works again.

    One conditional UPDATE, so two requests with the same code cannot both pass. Not committed.
    """
    if not user.totp_secret:
        return False
    step = matching_step(decrypt_secret(keys, user.totp_secret), code, at)
    if step is None:
        return False
    changed = rows_changed(
        db_session.execute(
            update(User)
            .where(
                User.id == user.id,
                User.totp_secret.is_not(None),
                or_(User.totp_last_step.is_(None), User.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
    )
    return changed == 1
