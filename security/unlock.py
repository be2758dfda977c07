"""The emailed unlock link: when a way in closes for browsers an account has not signed in with,
its owner on a new browser can have a link mailed to the confirmed address that makes that
browser a trusted device. Single-use, 30 minutes."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from models import User
from security import events
from security.accounts import find_user
from security.attempts import account_key, closed_for_new_browsers
from security.context import Context
from security.links import new_nonce, signer, spend_once
from security.outcomes import Reason, Refused, Unlocked
from security.trusted_devices import trust_this_device

LINK_MINUTES = 30
SENT = (
    "If that account has a confirmed email address, a link is on its way there. It works once, "
    "for 30 minutes, in this browser."
)
BAD_LINK = "That link is not valid, was already used, or is older than 30 minutes."


def _signer(ctx: Context) -> URLSafeTimedSerializer:
    return signer(ctx.keys, "unlock this browser")


def send_unlock_link(ctx: Context, identifier: str) -> str:
    """Mail the link when the name belongs to an account with a confirmed address; the answer
    is the same either way, so it tells nothing about the name."""
    user = find_user(ctx.db, identifier)
    if user is None or not user.email or user.email_verified_at is None:
        return SENT
    if not closed_for_new_browsers(ctx.db, account_key(user.id), ctx.limits):
        # Nothing to unlock: no mail, so the button cannot be used to flood the owner.
        return SENT
    if ctx.outbox.mailer is None:
        return SENT
    token = _signer(ctx).dumps({"user": user.id, "nonce": new_nonce()})
    link = f"{ctx.outbox.site}/accounts/unlock/{token}"
    body = (
        f"Someone asked to sign in to your Sparekey account {user.username} from a browser it "
        "has not been used from, after too many failed attempts from such browsers. If that "
        f"was you, open this link in that browser within 30 minutes:\n\n{link}\n\n"
        "It lets that browser sign in again with your password or a backup code. If it was "
        "not you, ignore this mail: your browsers that signed in before are not affected.\n\n"
        f"Site: {ctx.outbox.site}\n"
    )
    ctx.outbox.mailer.send(user.email, "Unlock your Sparekey account on a new browser", body)
    events.log_event(events.UNLOCK_SENT, user.id, "success", "", ctx.client.ip)
    return SENT


def use_unlock_link(ctx: Context, token: str) -> Unlocked | Refused:
    """Follow the link: once, within 30 minutes; this browser becomes a trusted device."""
    try:
        claims = _signer(ctx).loads(token, max_age=LINK_MINUTES * 60)
    except (BadSignature, SignatureExpired):
        return Refused(Reason.WRONG_SECRET, BAD_LINK)
    user = ctx.db.get(User, claims.get("user"))
    if user is None:
        return Refused(Reason.WRONG_SECRET, BAD_LINK)
    if not spend_once(ctx.db, "unlock", claims):
        return Refused(Reason.WRONG_SECRET, BAD_LINK)
    device_token = trust_this_device(ctx.db, user.id, ctx.client.device_tokens)
    events.record_event(ctx, user.id, events.DEVICE_UNLOCKED)
    ctx.db.commit()
    return Unlocked(username=user.username, device_token=device_token)
