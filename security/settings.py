"""What a signed-in owner does in Settings, one use case each: new codes, check a saved code,
change the password (or set one after a recovery), the authentication app, sessions, securing
the account, the "A backup code was used" notice, the download.

Each takes a Context and plain values, returns one outcome from `security/outcomes.py`, and owns
its transaction: it commits once, or rolls back and changes nothing but the counted attempt.
"""

from __future__ import annotations

from models import User, UserSession
from security import events
from security.attempts import CODE, PASSWORD
from security.backup_codes import (
    code_status,
    find_unused_code,
    redeem_backup_code,
    replace_code_set,
)
from security.context import Context
from security.guard import Attempt, begin_attempt
from security.outcomes import (
    AppTurnedOn,
    CodeIsValid,
    CurrentSet,
    Done,
    NewCodes,
    PasswordChanged,
    Reason,
    Refused,
    Secured,
    SessionsEnded,
    Started,
)
from security.passwords import hash_password, verify_password
from security.sessions import (
    clear_password_change_flag,
    end_other_sessions,
    end_session_by_public_id,
    start_session,
)
from security.two_factor import lock_every_door, new_pending_secret, turn_off_app, turn_on_app

WRONG_PASSWORD = "That password is not right. Nothing was changed."
WRONG_PASSWORD_NOTHING_CHECKED = "That password is not right. No code was checked."
WRONG_OWN_CODE = "That code did not work. Each code works only once."
WRONG_SETUP_CODE = (
    "That code did not match. Check that the app shows Sparekey and the time on your phone is "
    "right, then type the newest code."
)
NO_LONGER_CURRENT = "Those codes are no longer current. Get new backup codes to download them."
SESSION_GONE = "That session had already ended."


def _password_attempt(ctx: Context, user: User, password: str, where: str) -> Attempt | Refused:
    """ "Confirm it's you": the password, on the same counter as the log-in form."""
    attempt = begin_attempt(ctx, PASSWORD, where, user)
    if isinstance(attempt, Refused):
        return attempt
    if not verify_password(ctx.keys, password, user.password_hash):
        return attempt.fail(events.CONFIRM_FAILED, WRONG_PASSWORD, Reason.WRONG_PASSWORD)
    return attempt


def _new_codes(ctx: Context, user: User) -> NewCodes:
    new_set = replace_code_set(ctx.db, ctx.keys, user.id)
    events.record_event(ctx, user.id, events.CODES_GENERATED, f"set {new_set.public_id}")
    return NewCodes(code_set=new_set)


def get_new_codes(ctx: Context, user: User, password: str) -> NewCodes | Refused:
    """ "Confirm it's you", then a new set in place of the old one: the set and its event are
    one transaction, so a failure leaves the old set whole and no event."""
    attempt = _password_attempt(ctx, user, password, "confirm password")
    if isinstance(attempt, Refused):
        return attempt
    attempt.succeed()
    new_codes = _new_codes(ctx, user)
    ctx.db.commit()
    return new_codes


def current_set_for_download(ctx: Context, user: User, set_id: str) -> CurrentSet | Refused:
    """The sheet a download names must be the account's current set."""
    status = code_status(ctx.db, user.id)
    if status is None or status.public_id != set_id:
        return Refused(Reason.NOT_CURRENT, NO_LONGER_CURRENT)
    return CurrentSet(status=status)


def check_saved_code(ctx: Context, user: User, password: str, code: str) -> CodeIsValid | Refused:
    """Tell the owner whether `code` (normalised) is an unused code of the current set, unspent.

    The whole check is one attempt of the `code` kind, reserved before any hashing, so it
    shares the account's limit with every other code entry. The password is checked under that
    same reservation and does not clear the counter on its own: otherwise knowing the password
    would reset the count between guesses. Only a valid code clears it, like any success.
    """
    attempt = begin_attempt(ctx, CODE, "check a saved code", user)
    if isinstance(attempt, Refused):
        return attempt
    if not verify_password(ctx.keys, password, user.password_hash):
        return attempt.fail(
            events.CONFIRM_FAILED, WRONG_PASSWORD_NOTHING_CHECKED, Reason.WRONG_PASSWORD
        )
    found = find_unused_code(ctx.db, ctx.keys, user.id, code)
    if found is None:
        status = code_status(ctx.db, user.id)
        set_name = status.public_id if status else "none"
        return attempt.fail(
            events.CODE_CHECK_FAILED,
            f"That is not an unused code of your current set ({set_name}): it may be used "
            "already, mistyped, or from an older sheet.",
            Reason.WRONG_CODE,
        )
    number = found[1]
    attempt.succeed()
    events.record_event(ctx, user.id, events.CODE_CHECKED, f"code #{number}")
    ctx.db.commit()
    return CodeIsValid(number=number)


def _set_password(ctx: Context, user: User, row: UserSession, password: str) -> int:
    """The one rule: a new password ends every other session of the account."""
    user.password_hash = hash_password(ctx.keys, password)
    events.record_event(ctx, user.id, events.PASSWORD_CHANGED)
    return end_other_sessions(ctx.db, user.id, keep_session_id=row.id)


def change_password(
    ctx: Context, user: User, row: UserSession, current_password: str, new_password: str
) -> PasswordChanged | Refused:
    attempt = _password_attempt(ctx, user, current_password, "confirm password")
    if isinstance(attempt, Refused):
        return attempt
    attempt.succeed()
    ended = _set_password(ctx, user, row, new_password)
    ctx.db.commit()
    return PasswordChanged(sessions_ended=ended)


def set_new_password(
    ctx: Context, user: User, row: UserSession, new_password: str
) -> PasswordChanged:
    """After a recovery (or securing the account): the new password this session must choose."""
    ended = _set_password(ctx, user, row, new_password)
    clear_password_change_flag(ctx.db, row.id)
    ctx.db.commit()
    return PasswordChanged(sessions_ended=ended)


def start_app_setup(ctx: Context, user: User) -> Done:
    new_pending_secret(ctx.keys, user)
    ctx.db.commit()
    return Done()


def confirm_app_setup(ctx: Context, user: User, password: str, code: str) -> AppTurnedOn | Refused:
    """Turn the app on with the password and the app's first code: one attempt of the password
    kind, reserved before any hashing, covers both. A right password alone does not clear the
    counter; only both right do. An account without codes gets its first sheet in the same
    transaction (the password was confirmed just now)."""
    attempt = _password_attempt(ctx, user, password, "app set-up")
    if isinstance(attempt, Refused):
        return attempt
    if not turn_on_app(ctx, user, code):
        return attempt.fail(events.APP_SETUP_FAILED, WRONG_SETUP_CODE, Reason.WRONG_CODE)
    attempt.succeed()
    first_sheet = None
    if code_status(ctx.db, user.id) is None:
        first_sheet = _new_codes(ctx, user).code_set
    ctx.db.commit()
    return AppTurnedOn(first_sheet=first_sheet)


def turn_app_off(ctx: Context, user: User, password: str) -> Done | Refused:
    attempt = _password_attempt(ctx, user, password, "confirm password")
    if isinstance(attempt, Refused):
        return attempt
    attempt.succeed()
    turn_off_app(ctx, user)
    ctx.db.commit()
    return Done()


def _secured(ctx: Context, user: User) -> Secured:
    lock_every_door(ctx, user)
    row, token = start_session(
        ctx.db, user.id, ctx.client.ip, ctx.client.user_agent, must_change_password=True
    )
    ctx.db.commit()
    return Secured(session=Started(user=user, token=token, row=row))


def secure_account_with_password(ctx: Context, user: User, password: str) -> Secured | Refused:
    """After "Wasn't you?": end every session, void the codes, start over with a new password."""
    attempt = _password_attempt(ctx, user, password, "confirm password")
    if isinstance(attempt, Refused):
        return attempt
    attempt.succeed()
    return _secured(ctx, user)


def secure_account_with_code(ctx: Context, user: User, code: str) -> Secured | Refused:
    """The same with one of the owner's backup codes (which is spent) instead of the password."""
    attempt = begin_attempt(ctx, CODE, "backup code", user)
    if isinstance(attempt, Refused):
        return attempt
    redemption = redeem_backup_code(ctx.db, ctx.keys, user.id, code)
    if redemption is None:
        return attempt.fail(events.CODE_FAILED, WRONG_OWN_CODE)
    attempt.succeed()
    events.record_code_use(ctx, user.id, redemption.number, redemption.codes_left)
    return _secured(ctx, user)


def log_out_session(ctx: Context, user: User, public_id: str) -> Done | Refused:
    """Log out one of the account's own sessions, named by its public id."""
    if not end_session_by_public_id(ctx.db, user.id, public_id):
        ctx.db.rollback()
        return Refused(Reason.GONE, SESSION_GONE)
    events.record_event(ctx, user.id, events.LOGGED_OUT, "another session")
    ctx.db.commit()
    return Done()


def log_out_other_sessions(ctx: Context, user: User, row: UserSession) -> SessionsEnded:
    ended = end_other_sessions(ctx.db, user.id, keep_session_id=row.id)
    events.record_event(ctx, user.id, events.LOGGED_OUT, f"{ended} other sessions")
    ctx.db.commit()
    return SessionsEnded(count=ended)


def dismiss_notice(ctx: Context, user: User) -> Done:
    user.clear_code_notice()
    ctx.db.commit()
    return Done()
