"""Security events: a row the account owner can read, and one structured log line each."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import insert, select
from sqlalchemy.orm import Session, SessionTransaction

from clock import now
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
# The site's administrator cleared the failure counters (`flask unlock-account`).
ACCOUNT_UNLOCKED = "account_unlocked"

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
    ACCOUNT_UNLOCKED: "Failed attempts cleared by the site's administrator",
}


# Written to the log only, never a row: a refusal by Flask-Limiter (a 429), logged by the web
# layer (app.py, register_request_hooks).
RATE_LIMITED = "rate_limited"


def log_event(
    kind: str,
    user_id: int | None,
    outcome: str,
    detail: str = "",
    ip: str = "",
    *,
    recorded: bool = False,
    **fields: Any,
) -> None:
    """One log record on "sparekey.security": the message is the event's kind, and `event`,
    `outcome`, `user_id`, `ip`, `detail`, `recorded` (a row in security_events holds it too) and
    any `fields` (a throttled refusal's `counter_kind` and `identifier_hash`, say) are its
    attributes, which the JSON formatter (logs.py) writes as fields and JSON escaping keeps on
    one line whatever a user typed. Other handlers (metrics) read the same attributes. Never
    pass a secret."""
    logger.info(
        kind,
        extra={
            "event": kind,
            "outcome": outcome,
            "user_id": user_id,
            "ip": ip,
            "detail": detail,
            "recorded": recorded,
            **fields,
        },
    )


# The log lines of events added to a session's transaction, written once it commits.
_UNCOMMITTED = "sparekey.security_event_lines"


def record_event(
    ctx: Context, user_id: int, kind: str, detail: str = "", outcome: str = "success"
) -> SecurityEvent:
    """Add the event row to the use case's transaction; its log line is written when that
    transaction commits, and never if it rolls back, so every line stands for a stored row.
    Never pass a secret."""
    event = SecurityEvent(
        user_id=user_id,
        kind=kind,
        ip=ctx.client.ip,
        user_agent=ctx.client.user_agent,
        detail=detail[:200],
    )
    ctx.db.add(event)
    _log_when_committed(ctx, user_id, kind, detail, outcome)
    return event


def write_event(
    ctx: Context, user_id: int, kind: str, detail: str = "", outcome: str = "success"
) -> None:
    """`record_event` for a caller that needs no event object (a failure): one INSERT, without
    the ORM's unit of work. A wrong secret for an account then costs what the stand-in's
    statement costs for a name without one (security/signing_in.py)."""
    ctx.db.execute(
        insert(SecurityEvent).values(
            user_id=user_id,
            kind=kind,
            created_at=now(),
            ip=ctx.client.ip,
            user_agent=ctx.client.user_agent,
            detail=detail[:200],
        )
    )
    _log_when_committed(ctx, user_id, kind, detail, outcome)


def _log_when_committed(ctx: Context, user_id: int, kind: str, detail: str, outcome: str) -> None:
    line = {"kind": kind, "user_id": user_id, "outcome": outcome, "detail": detail}
    ctx.db.info.setdefault(_UNCOMMITTED, []).append({**line, "ip": ctx.client.ip})


@sqlalchemy_event.listens_for(Session, "after_commit")
def _log_committed_events(session: Session) -> None:
    for line in session.info.pop(_UNCOMMITTED, []):
        log_event(recorded=True, **line)


@sqlalchemy_event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted_events(session: Session, transaction: SessionTransaction) -> None:
    """A rolled-back (or abandoned) transaction's events were never stored: no lines."""
    if transaction.parent is None:
        session.info.pop(_UNCOMMITTED, None)


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
