"""Mail to the owner about what happened to the account: never a code, password or secret; always
the site's address, the time, the device and the address it came from. Sent only to a verified
address, after the use case's commit (a mail about something that did not happen is worse than
none)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from clock import now
from models import User
from security.attempts import CODE, PASSWORD, RECOVERY_SECOND_FACTOR, SECOND_FACTOR
from security.devices import describe_device
from security.links import SECURE_ACCOUNT, new_nonce, signer

if TYPE_CHECKING:
    from security.context import Context


class Mailer(Protocol):
    """How the web layer sends mail (Flask-Mailman there); the domain only composes it."""

    def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class Notice:
    subject: str
    lines: tuple[str, ...]
    # The mail ends with "Wasn't you? Secure your account" and its link.
    offers_securing: bool = True


CODE_USED = "code used"
# bandit B105: the name of a notice, not a password.
PASSWORD_CHANGED = "password changed"  # nosec B105
APP_ON = "app on"
APP_OFF = "app off"
CODES_IN_USE = "codes in use"
NEW_DEVICE = "new device"
WAY_IN_CLOSED = "way in closed"
SIGNUP_ATTEMPT = "sign-up attempt"

# What a closed way in is called in a notice, by the failure counter's kind.
KIND_NAMES = {
    PASSWORD: "the password",
    CODE: "backup codes on “Forgot password?”",
    SECOND_FACTOR: "codes at the two-factor step",
    RECOVERY_SECOND_FACTOR: "codes at the two-factor step of a recovery",
}

NOTICES = {
    CODE_USED: Notice(
        "A backup code was used on your Sparekey account",
        ("A backup code was used to get into your account ({detail}).",),
    ),
    PASSWORD_CHANGED: Notice(
        "Your Sparekey password was changed", ("The password of your account was changed.",)
    ),
    APP_ON: Notice(
        "An authentication app was turned on for your Sparekey account",
        ("An authentication app now protects your account: log-in asks for its code.",),
    ),
    APP_OFF: Notice(
        "The authentication app of your Sparekey account was turned off",
        ("The authentication app was turned off: log-in no longer asks for its code.",),
    ),
    CODES_IN_USE: Notice(
        "New backup codes are in use on your Sparekey account",
        ("New backup codes are in use ({detail}); any older sheet no longer works.",),
    ),
    WAY_IN_CLOSED: Notice(
        "Sign-in to your Sparekey account paused on new browsers",
        (
            "After 100 wrong tries in a row, {detail} no longer works on your account from "
            "browsers it has not signed in with.",
            "Browsers you have signed in with before are not affected. On a new browser, press "
            "“Email me an unlock link” where the log-in or backup-code page says so.",
        ),
        # Someone else's guessing, not a change to the account: nothing to secure.
        offers_securing=False,
    ),
    NEW_DEVICE: Notice(
        "A new device signed in to your Sparekey account",
        ("Your account was signed in from a browser it had not been used from before.",),
    ),
    # {detail}: "email address", "phone number", or both. Nothing of the new account is named:
    # its username is the stranger's text, and its password is never anywhere.
    SIGNUP_ATTEMPT: Notice(
        "Someone tried to sign up with your address on Sparekey",
        (
            "Someone tried to create a new Sparekey account with your {detail}.",
            "That account was made without it: it cannot log in with your {detail} or get mail "
            "about you, and nothing changed on your account. If it was you, log in instead of "
            "signing up.",
        ),
        # Someone else's sign-up, not a change to the account: nothing to secure.
        offers_securing=False,
    ),
}

NOT_YOU = (
    "Wasn't you? Secure your account: open this link within 7 days. It logs out every session, "
    "makes your backup codes stop working, and lets you choose a new password in that browser."
)
NOT_YOU_SIGNED_IN = (
    "You can also log in and choose Settings → Security → “Secure your account”, or use a "
    "backup code on the log-in page (“Forgot password?”)."
)


def compose(
    notice: Notice,
    detail: str,
    site: str,
    when: datetime,
    user_agent: str,
    ip: str,
    secure_link: str = "",
) -> str:
    """The body of a notice: what happened, when, from where, and what to do if it was not you."""
    lines = [line.format(detail=detail) for line in notice.lines]
    lines += [
        "",
        f"When: {when.strftime('%-d %b %Y, %H:%M UTC')}",
        f"Device: {describe_device(user_agent)}",
        f"Address: {ip or 'unknown'}",
        f"Site: {site}",
    ]
    if secure_link:
        lines += ["", NOT_YOU, "", secure_link, "", NOT_YOU_SIGNED_IN]
    return "\n".join(lines) + "\n"


def secure_link(ctx: Context, user: User) -> str:
    """The "Secure your account" link for the account's verified address (single-use)."""
    claims = {"user": user.id, "email": user.email, "nonce": new_nonce()}
    token = signer(ctx.keys, SECURE_ACCOUNT).dumps(claims)
    return f"{ctx.outbox.site}/accounts/secure/{token}"


@dataclass(frozen=True)
class Outbox:
    """What a use case needs to mail the owner: the mailer and the site's address."""

    mailer: Mailer | None = None
    site: str = ""


def tell_owner(ctx: Context, user: User, kind: str, detail: str = "") -> bool:
    """Mail the owner about `kind` (after the commit), if the account has a verified address
    (a demo sandbox never has one, and is never mailed); True when sent."""
    outbox = ctx.outbox
    if outbox.mailer is None or user.is_sandbox:
        return False
    if not user.email or user.email_verified_at is None:
        return False
    notice = NOTICES[kind]
    link = secure_link(ctx, user) if notice.offers_securing else ""
    body = compose(notice, detail, outbox.site, now(), ctx.client.user_agent, ctx.client.ip, link)
    outbox.mailer.send(user.email, notice.subject, body)
    return True
