"""The authentication app of an account: set-up, turning it on and off, and securing the account.

These add to the use case's transaction; the use cases in `security/settings.py` commit.
"""

from __future__ import annotations

from sqlalchemy import delete

from clock import now
from models import BackupCode, BackupCodeSet, CodeSheet, User, UserSession
from security import ended_sessions, events
from security.accounts import lock_account
from security.context import Context
from security.ended_sessions import note_sessions_ending
from security.keys import KeyRing
from security.totp import decrypt_secret, encrypt_secret, matching_step, new_secret

# What a half-finished log-in is for: "login" after the password, "recovery" after a first,
# still unused, backup code.
LOGIN = "login"
RECOVERY = "recovery"


def pending_app_secret(keys: KeyRing, user: User) -> str | None:
    return decrypt_secret(keys, user.totp_pending_secret) if user.totp_pending_secret else None


def new_pending_secret(keys: KeyRing, user: User) -> None:
    """A new secret waits for its first code; any earlier pending secret is replaced."""
    user.totp_pending_secret = encrypt_secret(keys, new_secret())


def turn_on_app(ctx: Context, user: User, code: str) -> bool:
    """Turn the app on if `code` comes from the pending secret."""
    secret = pending_app_secret(ctx.keys, user)
    step = matching_step(secret, code, now()) if secret else None
    if step is None:
        return False
    user.totp_secret = user.totp_pending_secret
    user.totp_pending_secret = None
    user.totp_enabled_at = now()
    # The code that turned it on cannot be replayed to log in.
    user.totp_last_step = step
    events.record_event(ctx, user.id, events.APP_TURNED_ON)
    return True


def turn_off_app(ctx: Context, user: User) -> None:
    """Backup codes stay (see decisions)."""
    user.totp_secret = None
    user.totp_pending_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    events.record_event(ctx, user.id, events.APP_TURNED_OFF)


def lock_every_door(ctx: Context, user: User, detail: str = "") -> None:
    """After "Wasn't you?": end every session, void the remaining codes and any new sheet. Under
    the account's lock, so a save of a sheet already under way finishes first and is voided too."""
    lock_account(ctx.db, user.id)
    ctx.db.execute(delete(CodeSheet).where(CodeSheet.user_id == user.id))
    note_sessions_ending(ctx.db, user.id, ended_sessions.SECURED)
    ctx.db.execute(delete(UserSession).where(UserSession.user_id == user.id))
    ctx.db.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
    ctx.db.execute(delete(BackupCodeSet).where(BackupCodeSet.user_id == user.id))
    user.clear_code_notice()
    events.record_event(ctx, user.id, events.ACCOUNT_SECURED, detail)
