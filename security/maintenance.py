"""What an operator does from the command line: unlock an account, prune, reset the demo."""

from __future__ import annotations

from sqlalchemy import delete, select

from models import (
    AttemptCounter,
    BackupCode,
    BackupCodeSet,
    CodeSheet,
    PendingLogin,
    SecurityEvent,
    TrustedDevice,
    User,
    UserSession,
)
from security import events
from security.accounts import find_user
from security.attempts import (
    account_key,
    clear_failures,
    prune_unknown_name_counters,
    unknown_name_key,
)
from security.code_sheets import prune_sheets
from security.context import Context
from security.demo import SandboxRules, prune_sandboxes
from security.ended_sessions import prune_ended_sessions
from security.outcomes import Reason, Refused
from security.passwords import hash_password
from security.sessions import prune_expired
from security.signing_in import register_account
from security.trusted_devices import prune_devices

# The detail of the event `unlock_account` records (the owner reads it in the events list).
UNLOCKED_BY = "unlock-account command"


def unlock_account(ctx: Context, identifier: str) -> User | Refused:
    """Clear an account's failure counter (after checking who is asking, out of band): an event
    on the account's list, with its line in the security log (`record_event`)."""
    user = find_user(ctx.db, identifier)
    if user is None:
        return Refused(Reason.GONE, f"No account matches {identifier!r}.")
    clear_failures(ctx.db, account_key(user.id))
    # And the counters of the names it is typed by (security/guard.py: the visible wait).
    for name in (user.username, user.email, user.phone):
        if name:
            clear_failures(ctx.db, unknown_name_key(name))
    events.record_event(ctx, user.id, events.ACCOUNT_UNLOCKED, UNLOCKED_BY)
    ctx.db.commit()
    return user


def prune(ctx: Context, sandboxes: SandboxRules) -> dict[str, int]:
    """Delete demo sandboxes that are over (with everything they own), expired sessions,
    expired half-finished log-ins, code sheets past their 30 minutes, devices unused for a year,
    stale counters of unknown names and notes of why old sessions ended; returns how many of
    each went."""
    # Sandboxes first: the sessions and sheets that go with them are not counted again below.
    sandboxes_removed = prune_sandboxes(ctx.db, sandboxes)
    removed = prune_expired(ctx.db, ctx.timeouts, ctx.pending_login_seconds)
    removed["unsaved code sheets"] = prune_sheets(ctx.db)
    removed["devices unused for a year"] = prune_devices(ctx.db)
    removed["counters of unknown names"] = prune_unknown_name_counters(ctx.db, ctx.limits)
    removed["demo sandboxes"] = sandboxes_removed
    removed["notes of ended sessions"] = prune_ended_sessions(ctx.db, ctx.timeouts)
    ctx.db.commit()
    return removed


def demo_account(
    ctx: Context, username: str, password: str, profile: dict[str, str], reset: bool = False
) -> User:
    """The demo account, created if missing; `reset` puts it back to its first state: its
    profile and password, no backup codes, no authenticator app, no sessions, no history."""
    user = ctx.db.scalar(select(User).where(User.username == username))
    if user is None:
        created = register_account(
            ctx,
            username,
            password,
            email=profile["email"],
            display_name=profile["display_name"],
        )
        if isinstance(created, Refused):
            raise RuntimeError(created.message)
        user, reset = created, True
    if reset:
        user.password_hash = hash_password(ctx.keys, password)
        user.display_name = profile["display_name"]
        user.bio = profile["bio"]
        user.avatar = profile["avatar"]
        user.email, user.email_verified_at = profile["email"], None
        user.totp_secret = user.totp_pending_secret = None
        user.totp_enabled_at = user.totp_last_step = None
        user.clear_code_notice()
        for model in (
            CodeSheet,
            BackupCode,
            BackupCodeSet,
            UserSession,
            PendingLogin,
            SecurityEvent,
            TrustedDevice,
        ):
            ctx.db.execute(delete(model).where(model.user_id == user.id))
        ctx.db.execute(delete(AttemptCounter).where(AttemptCounter.key == account_key(user.id)))
        ctx.db.commit()
    return user
