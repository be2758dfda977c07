"""The account's email address: verified by a link mailed to it before anything is sent there."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from clock import now
from models import User
from security import ended_sessions, events
from security.accounts import lock_account
from security.confirm import SESSION_ENDED, confirm_it_is_you
from security.context import Context
from security.ended_sessions import note_sessions_ending
from security.links import new_nonce, signer, spend_once
from security.outcomes import Done, EmailChanged, Reason, Refused
from security.sessions import end_other_sessions

LINK_HOURS = 24
NO_ADDRESS = "Your account has no email address. Add one at sign-up or ask the administrator."
NO_MAILER = "Mail cannot be sent from this site right now. Try again later."
BAD_LINK = "That link is not valid, was already used, or is older than 24 hours. Send a new one."
BAD_UNDO = (
    "That link is not valid, was already used, is older than 7 days, or the address changed again."
)
TAKEN = "Another account uses this email address."
SANDBOX_NO_MAIL = (
    "A demo account cannot have an email address: it never receives mail. "
    "Sign up for a real account to get notices by mail."
)


def _signer(ctx: Context) -> URLSafeTimedSerializer:
    return signer(ctx.keys, "verify email")


def send_verification(ctx: Context, user: User) -> Done | Refused:
    """Mail a link to the account's address; following it marks the address verified."""
    if user.is_sandbox:
        return Refused(Reason.DEMO, SANDBOX_NO_MAIL)
    if not user.email:
        return Refused(Reason.GONE, NO_ADDRESS)
    if ctx.outbox.mailer is None:
        return Refused(Reason.GONE, NO_MAILER)
    token = _signer(ctx).dumps({"user": user.id, "email": user.email})
    link = f"{ctx.outbox.site}/settings/security/email/verify/{token}"
    body = (
        "Follow this link within 24 hours to confirm this address for your Sparekey account "
        f"{user.username}:\n\n{link}\n\nSparekey then tells you here when a backup code is "
        "used, the password changes or a new device signs in. If you did not ask for this, "
        f"ignore this mail.\n\nSite: {ctx.outbox.site}\n"
    )
    ctx.outbox.mailer.send(user.email, "Confirm your email address for Sparekey", body)
    return Done()


def verify_email(ctx: Context, user: User, token: str) -> Done | Refused:
    """The link, followed while signed in to the account it names, for the address it names."""
    try:
        claims = _signer(ctx).loads(token, max_age=LINK_HOURS * 3600)
    except (BadSignature, SignatureExpired):
        return Refused(Reason.WRONG_SECRET, BAD_LINK)
    if claims.get("user") != user.id or claims.get("email") != user.email:
        return Refused(Reason.WRONG_SECRET, BAD_LINK)
    if user.email_verified_at is None:
        user.email_verified_at = now()
        events.record_event(ctx, user.id, events.EMAIL_VERIFIED, user.email or "")
        ctx.db.commit()
    return Done()


UNDO_DAYS = 7
CHANGED_BODY = (
    "The email address of your Sparekey account {username} was changed from this address to "
    "{new}.\n\nIf that was not you, follow this link within 7 days to put this address back "
    "and log out every session of the account:\n\n{link}\n\nWhen: {when}\nSite: {site}\n"
)


def _undo_signer(ctx: Context) -> URLSafeTimedSerializer:
    return signer(ctx.keys, "undo email change")


def change_email(
    ctx: Context,
    user: User,
    password: str,
    new_email: str,
    codes: tuple[str, ...] = (),
    session_id: str | None = None,
) -> EmailChanged | Refused:
    """A new address (normalised), confirmed with what a sign-in asks (security/confirm.py): it
    is unconfirmed until its link is followed, and a confirmed old address is told, with a link
    that undoes the change. A demo sandbox never gets one: nothing is checked or counted."""
    if user.is_sandbox:
        return Refused(Reason.DEMO, SANDBOX_NO_MAIL)
    confirmed = confirm_it_is_you(ctx, user, "change email", password, codes)
    if isinstance(confirmed, Refused):
        return confirmed
    old, old_confirmed = user.email, user.email_verified_at is not None
    taken = ctx.db.scalar(select(User.id).where(User.email == new_email, User.id != user.id))
    if taken is not None:
        # The secrets were right: that clears the counter, and nothing else changes (a backup
        # code typed is not spent).
        ctx.db.rollback()
        confirmed.attempt.succeed()
        ctx.db.commit()
        return Refused(Reason.TAKEN, TAKEN)
    if not confirmed.succeed(session_id):
        return Refused(Reason.GONE, SESSION_ENDED)
    user.email, user.email_verified_at = new_email, None
    try:
        ctx.db.flush()
    except IntegrityError:
        ctx.db.rollback()
        return Refused(Reason.TAKEN, TAKEN)
    events.record_event(ctx, user.id, events.EMAIL_CHANGED)
    ctx.db.commit()
    confirmed.tell()
    if old and old_confirmed and ctx.outbox.mailer is not None:
        claims = {"user": user.id, "old": old, "new": new_email, "nonce": new_nonce()}
        token = _undo_signer(ctx).dumps(claims)
        body = CHANGED_BODY.format(
            username=user.username,
            new=new_email,
            link=f"{ctx.outbox.site}/accounts/email/undo/{token}",
            when=now().strftime("%-d %b %Y, %H:%M UTC"),
            site=ctx.outbox.site,
        )
        ctx.outbox.mailer.send(old, "The email address of your Sparekey account changed", body)
    send_verification(ctx, user)
    return EmailChanged(address=new_email)


def undo_email_change(ctx: Context, token: str) -> Done | Refused:
    """The old address's link: once, within 7 days, while the new address is still in place;
    the old address comes back confirmed and every session of the account ends."""
    try:
        claims = _undo_signer(ctx).loads(token, max_age=UNDO_DAYS * 24 * 3600)
    except (BadSignature, SignatureExpired):
        return Refused(Reason.WRONG_SECRET, BAD_UNDO)
    user = ctx.db.get(User, claims.get("user"))
    if user is None or user.email != claims.get("new"):
        return Refused(Reason.WRONG_SECRET, BAD_UNDO)
    if not spend_once(ctx.db, "undo email change", claims):
        return Refused(Reason.WRONG_SECRET, BAD_UNDO)
    lock_account(ctx.db, user.id)
    user.email, user.email_verified_at = claims.get("old"), now()
    note_sessions_ending(ctx.db, user.id, ended_sessions.EMAIL_CHANGE_UNDONE)
    end_other_sessions(ctx.db, user.id, keep_session_id=None)
    events.record_event(ctx, user.id, events.EMAIL_CHANGE_UNDONE)
    try:
        ctx.db.commit()
    except IntegrityError:
        ctx.db.rollback()
        return Refused(Reason.TAKEN, TAKEN)
    return Done()
