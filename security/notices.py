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

if TYPE_CHECKING:
    from security.context import Context


class Mailer(Protocol):
    """How the web layer sends mail (Flask-Mailman there); the domain only composes it."""

    def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class Notice:
    subject: str
    lines: tuple[str, ...]


CODE_USED = "code used"
# bandit B105: the name of a notice, not a password.
PASSWORD_CHANGED = "password changed"  # nosec B105
APP_ON = "app on"
APP_OFF = "app off"
CODES_IN_USE = "codes in use"
NEW_DEVICE = "new device"
WAY_IN_CLOSED = "way in closed"

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
    ),
    NEW_DEVICE: Notice(
        "A new device signed in to your Sparekey account",
        ("Your account was signed in from a browser it had not been used from before.",),
    ),
}

NOT_YOU = (
    "If that was not you, log in, go to Settings → Security and choose “Secure your account”, "
    "or use a backup code on the log-in page (“Forgot password?”)."
)


def compose(
    notice: Notice, detail: str, site: str, when: datetime, user_agent: str, ip: str
) -> str:
    """The body of a notice: what happened, when, from where, and what to do if it was not you."""
    lines = [line.format(detail=detail) for line in notice.lines]
    lines += [
        "",
        f"When: {when.strftime('%-d %b %Y, %H:%M UTC')}",
        f"Device: {describe_device(user_agent)}",
        f"Address: {ip or 'unknown'}",
        f"Site: {site}",
        "",
        NOT_YOU,
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Outbox:
    """What a use case needs to mail the owner: the mailer and the site's address."""

    mailer: Mailer | None = None
    site: str = ""


def tell_owner(ctx: Context, user: User, kind: str, detail: str = "") -> bool:
    """Mail the owner about `kind` (after the commit), if the account has a verified address;
    True when sent."""
    outbox = ctx.outbox
    if outbox.mailer is None or not user.email or user.email_verified_at is None:
        return False
    notice = NOTICES[kind]
    body = compose(notice, detail, outbox.site, now(), ctx.client.user_agent, ctx.client.ip)
    outbox.mailer.send(user.email, notice.subject, body)
    return True
