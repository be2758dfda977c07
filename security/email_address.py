"""The account's email address: verified by a link mailed to it before anything is sent there."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from clock import now
from models import User
from security import events
from security.context import Context
from security.outcomes import Done, Reason, Refused

LINK_HOURS = 24
NO_ADDRESS = "Your account has no email address. Add one at sign-up or ask the administrator."
NO_MAILER = "Mail cannot be sent from this site right now. Try again later."
BAD_LINK = "That link is not valid, was already used, or is older than 24 hours. Send a new one."


def _signer(ctx: Context) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.keys.link_key, salt="verify email")


def send_verification(ctx: Context, user: User) -> Done | Refused:
    """Mail a link to the account's address; following it marks the address verified."""
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
