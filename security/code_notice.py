"""The "A backup code was used" notice, kept per session.

A code use names its event and the session that used it on the account row. Every other session
shows the notice until that session dismisses it, or 7 days pass; dismissing hides it in that
session only, so a session that used a code (an intruder's, say) cannot hide it from the owner's.
The events list keeps the use whatever any session dismissed.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from clock import now
from models import SecurityEvent, User, UserSession

SHOWN_FOR = timedelta(days=7)


def show_elsewhere(db: Session, user: User, event: SecurityEvent, session_id: str | None) -> None:
    """After a backup code is used (in the use case's transaction): every session but
    `session_id` shows `event` until it dismisses it."""
    db.flush()  # the event's id
    user.code_notice_event_id = event.id
    user.code_notice_session_id = session_id


def notice_for(db: Session, user: User, row: UserSession) -> SecurityEvent | None:
    """The code use `row`'s pages show, if any: not the session's own, not dismissed there,
    at most 7 days old."""
    event_id = user.code_notice_event_id
    if not event_id or user.code_notice_session_id == row.id:
        return None
    if row.notice_dismissed_event_id == event_id:
        return None
    event = db.get(SecurityEvent, event_id)
    if event is None or event.created_at < now() - SHOWN_FOR:
        return None
    return event


def dismiss_here(db: Session, user: User, row: UserSession) -> bool:
    """Hide the current notice in this session only (not committed); False if it showed none."""
    if notice_for(db, user, row) is None:
        return False
    row.notice_dismissed_event_id = user.code_notice_event_id
    return True
