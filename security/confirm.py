"""What "Confirm it's you" means: what a signed-in session must show before an action that
could lock the owner out or remove a factor (docs/decisions.md, "What each action needs").

A session alone is never enough, and neither is less than a fresh sign-in or a recovery would
ask. On an account with an authentication app that is two secrets: the password and the app's
code, the password and a backup code (the phone is lost), or two backup codes (as "Forgot
password?" asks); a backup code and the app's code also count. Without an app, one secret: the
password (or, where the page offers it, a backup code, as "Forgot password?" asks).

Every confirmation is one attempt of the password kind on this browser's counter, reserved before
any hashing; a wrong secret anywhere fails the whole attempt and changes nothing else. Backup codes
offered are spent only when the action happens (they are in its transaction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from clock import now
from models import User, UserSession
from security import events
from security.attempts import PASSWORD
from security.backup_codes import Redemption, redeem_backup_code
from security.code_notice import show_elsewhere
from security.context import Context
from security.guard import WRONG_PASSWORD, Attempt, begin_attempt
from security.notices import CODE_USED, tell_owner
from security.outcomes import Reason, Refused
from security.passwords import verify_password
from security.totp import DIGITS as APP_CODE_DIGITS
from security.totp import accept_code

WRONG_CODE = (
    "That code did not work: an app code must be the newest one, and each backup code works "
    "only once. Nothing was changed."
)
NEEDS_TWO = (
    "Your account has an authentication app, so this needs your password and a code from the "
    "app. Lost your phone? Use a backup code instead of the app's code."
)
NEEDS_SECOND_CODE = (
    "Your account has an authentication app, so one backup code is not enough: add a second "
    "backup code or a code from the app."
)
NEEDS_ONE = "Enter your password."
SESSION_ENDED = "This session was logged out meanwhile. Nothing was changed."
NEEDS_ANY = "Enter your password, a code from your authentication app, or a backup code."


@dataclass
class Confirmed:
    """The secrets were right. `succeed` clears the counter and records the backup codes spent,
    in the action's transaction; `tell` mails the owner after its commit."""

    attempt: Attempt
    user: User
    spent: list[Redemption] = field(default_factory=list)

    def succeed(self, session_id: str | None) -> bool:
        """False (after a rollback) when the session `session_id` ended meanwhile: another
        request logged it out, and the action must not happen for a session that is gone. The
        account's lock is taken first, so that request has committed by now."""
        self.attempt.succeed()
        db = self.attempt.ctx.db
        if session_id is not None and not session_alive(db, session_id):
            db.rollback()
            return False
        event = None
        for redemption in self.spent:
            event = events.record_code_use(
                self.attempt.ctx, self.user.id, redemption.number, redemption.codes_left
            )
        if event is not None:
            # The session that used a code never shows its own warning; every other one does.
            show_elsewhere(db, self.user, event, session_id)
        return True

    def tell(self) -> None:
        if self.spent:
            numbers = " and ".join(f"#{r.number}" for r in self.spent)
            left = min(r.codes_left for r in self.spent)
            tell_owner(self.attempt.ctx, self.user, CODE_USED, f"code {numbers}, {left} left")


def session_alive(db: Session, session_id: str) -> bool:
    """Read from the database, not the request's copy of the row: another request may have
    ended the session (ask under the account's lock)."""
    return db.scalar(select(UserSession.id).where(UserSession.id == session_id)) is not None


def _from_the_app(typed: str) -> bool:
    """Normalised input of 6 digits is the app's code, of 8 a backup code (by its length only)."""
    return len(typed) == APP_CODE_DIGITS


def secrets_needed(user: User) -> int:
    """Two on an account with an app, one without."""
    return 2 if user.totp_secret else 1


def confirm_it_is_you(
    ctx: Context,
    user: User,
    where: str,
    password: str,
    codes: tuple[str, ...],
    needed: int | None = None,
) -> Confirmed | Refused:
    """Check `needed` secrets (default `secrets_needed`): the password if given, then `codes`
    (normalised: 6 digits are the app's, 8 a backup code's), in that order. Too few secrets is a
    clear message that counts nothing."""
    count = secrets_needed(user) if needed is None else needed
    offered: list[str] = ([password] if password else []) + [c for c in codes if c]
    if len(offered) < count:
        if needed is not None:
            return Refused(Reason.INCOMPLETE, NEEDS_ANY)
        if count == 1:
            return Refused(Reason.INCOMPLETE, NEEDS_ONE)
        return Refused(Reason.INCOMPLETE, NEEDS_TWO if password else NEEDS_SECOND_CODE)
    attempt = begin_attempt(ctx, PASSWORD, where, user)
    if isinstance(attempt, Refused):
        return attempt
    confirmed = Confirmed(attempt, user)
    checked = 0
    if password:
        if not verify_password(ctx.keys, password, user.password_hash):
            return attempt.fail(events.CONFIRM_FAILED, WRONG_PASSWORD, Reason.WRONG_PASSWORD)
        checked = 1
    for code in codes:
        if checked == count:
            break
        if not code:
            continue
        if _from_the_app(code):
            if not accept_code(ctx.db, ctx.keys, user, code, now()):
                return attempt.fail(events.CONFIRM_FAILED, WRONG_CODE, Reason.WRONG_CODE)
        else:
            redemption = redeem_backup_code(ctx.db, ctx.keys, user.id, code)
            if redemption is None:
                return attempt.fail(events.CONFIRM_FAILED, WRONG_CODE, Reason.WRONG_CODE)
            confirmed.spent.append(redemption)
        checked += 1
    return confirmed
