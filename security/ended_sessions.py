"""Why a session was ended from elsewhere, kept for the browser that still holds its cookie.

A session ended by a new password, a backup code used, a change of factors or "Log out other
sessions" disappears while its browser is away; when that browser comes back, its cookie names a
row that is gone. Each use case that ends other sessions first notes why, under the ended
session's id (the SHA-256 of its token, never the token), so the next page of that browser can
say "You were logged out because ..." instead of a bare log-in page. The note says only what
happened, never where or by whom, and is pruned with expired sessions.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, insert, literal, select
from sqlalchemy.orm import Session

from clock import now
from models import EndedSession, UserSession
from security.rows import rows_changed
from security.sessions import Timeouts, token_digest

# bandit B105: a reason, not a password.
PASSWORD_CHANGED = "password changed"  # nosec B105
CODE_USED = "backup code used"
CODES_REPLACED = "new backup codes"
APP_TURNED_ON = "app turned on"
APP_TURNED_OFF = "app turned off"
LOGGED_OUT_ELSEWHERE = "logged out elsewhere"
SECURED = "account secured"
EMAIL_CHANGE_UNDONE = "email change undone"

MESSAGES = {
    PASSWORD_CHANGED: (
        "You were logged out because your password changed on another device. Log in with the "
        "new password."
    ),
    CODE_USED: (
        "You were logged out because a backup code was used on another device. If that was not "
        "you, use one of your backup codes to get back in (Forgot password?), then secure your "
        "account."
    ),
    CODES_REPLACED: (
        "You were logged out because new backup codes were saved on another device. Log in "
        "again; your old sheet no longer works."
    ),
    APP_TURNED_ON: (
        "You were logged out because an authentication app was turned on on another device. "
        "Log in again with your password and the app's code."
    ),
    APP_TURNED_OFF: (
        "You were logged out because the authentication app was turned off on another device. "
        "Log in again."
    ),
    LOGGED_OUT_ELSEWHERE: (
        "You were logged out from another device (Login activity). Log in again if that was "
        "you; if not, change your password."
    ),
    SECURED: (
        "You were logged out because every session of the account was ended and its backup "
        "codes voided from another device. Log in with the new password."
    ),
    EMAIL_CHANGE_UNDONE: (
        "You were logged out because an email change was undone from the old address. Log in again."
    ),
}


def note_sessions_ending(
    db_session: Session,
    user_id: int,
    reason: str,
    keep_session_id: str | None = None,
    public_id: str | None = None,
) -> None:
    """Note why the account's sessions (all but `keep_session_id`, or the one named by
    `public_id`) are about to end. Call it just before they are deleted, in the same
    transaction: the note and the ending commit or roll back together."""
    condition = UserSession.user_id == user_id
    if keep_session_id is not None:
        condition = condition & (UserSession.id != keep_session_id)
    if public_id is not None:
        condition = condition & (UserSession.public_id == public_id)
    current = now()
    db_session.execute(
        insert(EndedSession).from_select(
            ["id", "user_id", "reason", "ended_at"],
            select(UserSession.id, UserSession.user_id, literal(reason), literal(current)).where(
                condition
            ),
        )
    )


def why_session_ended(db_session: Session, token: str | None) -> str | None:
    """What to tell the browser whose cookie holds `token`, a session ended from elsewhere; None
    when there is nothing to tell (no token, a session that just expired, an unknown one)."""
    if not token or len(token) > 64:
        return None
    reason = db_session.scalar(
        select(EndedSession.reason).where(EndedSession.id == token_digest(token))
    )
    return MESSAGES.get(reason) if reason is not None else None


def prune_ended_sessions(db_session: Session, timeouts: Timeouts) -> int:
    """Forget notes older than the longest a session lives: no cookie can name them any more.
    Not committed."""
    cutoff = now() - timedelta(seconds=timeouts.absolute_seconds)
    return rows_changed(
        db_session.execute(delete(EndedSession).where(EndedSession.ended_at < cutoff))
    )
