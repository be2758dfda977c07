"""Security events: a row the account owner can read, and one structured log line each."""

from __future__ import annotations

import json
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import SecurityEvent
from security.context import Context

logger = logging.getLogger("sparekey.security")

SIGNED_UP = "signed_up"
LOGGED_IN = "logged_in"
LOGIN_FAILED = "login_failed"
LOGGED_OUT = "logged_out"
CODES_GENERATED = "codes_generated"
CODE_USED = "backup_code_used"
CODE_FAILED = "backup_code_failed"
RECOVERED = "recovered_with_backup_code"
# bandit B105: an event name.
PASSWORD_CHANGED = "password_changed"  # nosec B105
CONFIRM_FAILED = "password_confirm_failed"
THROTTLED = "throttled"
APP_CODE_FAILED = "app_code_failed"
APP_TURNED_ON = "app_turned_on"
APP_TURNED_OFF = "app_turned_off"
ACCOUNT_SECURED = "account_secured"
CODE_CHECKED = "backup_code_checked"
CODE_CHECK_FAILED = "backup_code_check_failed"
APP_SETUP_FAILED = "app_setup_code_failed"
CODES_IN_USE = "backup_codes_in_use"
CODES_SAVED = "backup_codes_saved"
OLD_CODES_VOIDED = "old_backup_codes_voided"
SHEET_CHECK_FAILED = "new_sheet_code_failed"
EMAIL_VERIFIED = "email_verified"
UNLOCK_SENT = "unlock_link_sent"
EMAIL_CHANGED = "email_changed"
EMAIL_CHANGE_UNDONE = "email_change_undone"
DEVICE_UNLOCKED = "device_unlocked"

DESCRIPTIONS = {
    SIGNED_UP: "Account created",
    LOGGED_IN: "Logged in",
    LOGIN_FAILED: "Failed log-in attempt",
    LOGGED_OUT: "Logged out",
    CODES_GENERATED: "New backup codes created",
    CODE_USED: "Backup code used",
    CODE_FAILED: "Wrong backup code entered",
    RECOVERED: "Account recovered with a backup code",
    PASSWORD_CHANGED: "Password changed",
    CONFIRM_FAILED: "Wrong password at “Confirm it's you”",
    THROTTLED: "Attempts paused after too many failures",
    APP_CODE_FAILED: "Wrong code from the authentication app",
    APP_TURNED_ON: "Authentication app turned on",
    APP_TURNED_OFF: "Authentication app turned off",
    ACCOUNT_SECURED: "Account secured: every session ended, backup codes voided",
    CODE_CHECKED: "Saved backup code checked",
    CODE_CHECK_FAILED: "Checked a backup code that is not an unused code of the current set",
    APP_SETUP_FAILED: "Wrong code while turning on the authentication app",
    CODES_IN_USE: "New backup codes saved and in use; the old ones no longer work",
    CODES_SAVED: "Backup code sheet saved",
    OLD_CODES_VOIDED: "Old backup codes voided early; the new ones are in use",
    SHEET_CHECK_FAILED: "Wrong code typed back from a new sheet",
    EMAIL_VERIFIED: "Email address confirmed",
    UNLOCK_SENT: "Unlock link mailed",
    EMAIL_CHANGED: "Email address changed",
    EMAIL_CHANGE_UNDONE: "Email change undone from the old address; every session ended",
    DEVICE_UNLOCKED: "A new browser was unlocked with a mailed link",
}


def log_event(kind: str, user_id: int | None, outcome: str, detail: str = "", ip: str = "") -> None:
    """One JSON line; json.dumps escapes CR/LF and quotes in anything a user typed."""
    logger.info(
        json.dumps(
            {"event": kind, "user_id": user_id, "ip": ip, "outcome": outcome, "detail": detail},
            ensure_ascii=True,
        )
    )


def record_event(
    ctx: Context, user_id: int, kind: str, detail: str = "", outcome: str = "success"
) -> SecurityEvent:
    """Add the event row to the use case's transaction and write its log line. Never pass a
    secret."""
    event = SecurityEvent(
        user_id=user_id,
        kind=kind,
        ip=ctx.client.ip,
        user_agent=ctx.client.user_agent,
        detail=detail[:200],
    )
    ctx.db.add(event)
    log_event(kind, user_id, outcome, detail, ctx.client.ip)
    return event


def record_code_use(ctx: Context, user_id: int, number: int, codes_left: int) -> SecurityEvent:
    """The "backup code used" event: which code, and how many are left."""
    return record_event(ctx, user_id, CODE_USED, f"code #{number}, {codes_left} left")


def recent_events(db_session: Session, user_id: int, limit: int = 50) -> list[SecurityEvent]:
    return list(
        db_session.scalars(
            select(SecurityEvent)
            .where(SecurityEvent.user_id == user_id)
            .order_by(SecurityEvent.created_at.desc(), SecurityEvent.id.desc())
            .limit(limit)
        )
    )
