"""What a signed-in owner does in Settings, one use case each: a new sheet of codes and saving it,
check a saved code, change the password (or set one after a recovery), the authentication app,
sessions, securing the account, the "A backup code was used" notice.

Each takes a Context and plain values, returns one outcome from `security/outcomes.py`, and owns
its transaction: it commits once, or rolls back and changes nothing but the counted attempt.
"""

from __future__ import annotations

from dataclasses import replace

from itsdangerous import BadSignature, SignatureExpired

from models import CodeSheet, User, UserSession
from security import ended_sessions, events
from security.accounts import lock_account
from security.attempts import PASSWORD
from security.backup_codes import (
    CodeStatus,
    code_status,
    code_status_and_sheet,
    find_unused_code,
)
from security.code_notice import dismiss_here
from security.code_sheets import (
    PreparedSheet,
    Sheet,
    add_sheet,
    live_sheet,
    number_on_sheet,
    prepare_sheet,
    put_in_use,
    read_sheet,
    remove_sheet,
    typed_back,
    waiting_sheet,
)
from security.confirm import SESSION_ENDED, Confirmed, confirm_it_is_you, session_alive
from security.context import Context
from security.ended_sessions import note_sessions_ending
from security.guard import begin_attempt, password_attempt
from security.links import SECURE_ACCOUNT, SECURE_LINK_DAYS, signer, spend_once
from security.notices import (
    APP_OFF,
    APP_ON,
    CODES_IN_USE,
    PASSWORD_CHANGED,
    tell_owner,
)
from security.outcomes import (
    AppTurnedOn,
    CodeIsValid,
    CodesSaved,
    Done,
    PasswordChanged,
    Reason,
    Refused,
    Secured,
    SessionsEnded,
    SheetReady,
)
from security.passwords import hash_password, verify_password
from security.sessions import (
    clear_password_change_flag,
    end_other_sessions,
    end_session_by_public_id,
)
from security.signing_in import start_browser_session
from security.two_factor import lock_every_door, new_pending_secret, turn_off_app, turn_on_app

# bandit B105: messages, not passwords.
WRONG_PASSWORD_NOTHING_CHECKED = "That password is not right. No code was checked."  # nosec B105
WRONG_SETUP_CODE = (
    "That code did not match. Check that the app shows Sparekey and the time on your phone is "
    "right, then type the newest code."
)
SHEET_GONE = (
    "Those codes are no longer waiting: they were saved, replaced, or 30 minutes passed. "
    "Get new backup codes if you need a sheet."
)
SESSION_GONE = "That session had already ended."


def _new_sheet(ctx: Context, user: User, session_id: str, prepared: PreparedSheet) -> SheetReady:
    """The prepared set's sheet for this session. A first set is in use at once (nothing to
    protect); any other waits until its sheet is typed back, and the set in use keeps working
    (its sheet may be printed already, saved or not). The caller holds the account's lock."""
    first = code_status(ctx.db, user.id) is None
    sheet = add_sheet(ctx.db, prepared, user.id, session_id, in_use=first)
    detail = f"set {sheet.public_id}" + ("" if first else ", waiting to be saved")
    events.record_event(ctx, user.id, events.CODES_GENERATED, detail)
    return SheetReady(public_id=sheet.public_id, in_use=first)


def get_new_codes(
    ctx: Context, user: User, session_id: str, password: str, codes: tuple[str, ...] = ()
) -> SheetReady | Refused:
    """Confirm it's you (security/confirm.py), then a new sheet for this session, and every
    other session of the account ends. The sheet, its event and the ended sessions are one
    transaction: a failure leaves no sheet, no event, the sessions and the old set."""
    confirmed = confirm_it_is_you(ctx, user, "new codes", password, codes)
    if isinstance(confirmed, Refused):
        return confirmed
    # The ten derivations run before any lock; the secrets were right, so they are no
    # amplifier for guessing.
    prepared = prepare_sheet(ctx.keys)
    if not confirmed.succeed(session_id):
        return Refused(Reason.GONE, SESSION_ENDED)
    ready = _new_sheet(ctx, user, session_id, prepared)
    ended = _end_others(ctx, user, session_id, "new backup codes", ended_sessions.CODES_REPLACED)
    ctx.db.commit()
    confirmed.tell()
    if ready.in_use:
        tell_owner(ctx, user, CODES_IN_USE, f"set {ready.public_id}, your first")
    return replace(ready, sessions_ended=ended)


def codes_page(ctx: Context, user: User, session_id: str) -> tuple[CodeStatus | None, Sheet | None]:
    """What the Backup Codes page shows: the set in use and this session's sheet, if it is
    saving one. One statement when the account has no sheet on the server (the usual case)."""
    status, maybe_sheet = code_status_and_sheet(ctx.db, user.id)
    return status, sheet_for(ctx, user, session_id) if maybe_sheet else None


def sheet_for(ctx: Context, user: User, session_id: str) -> Sheet | None:
    """The sheet this session is saving (reload, Back, Download, Copy), from the server's copy."""
    sheet = live_sheet(ctx.db, user.id, session_id)
    return read_sheet(ctx.keys, sheet) if sheet is not None else None


def _the_shown_sheet(ctx: Context, user: User, session_id: str, public_id: str) -> CodeSheet | None:
    """The sheet the page showed (`public_id`), read under the account's lock and its own:
    another request may have replaced it, or ended this session, meanwhile. None (after a
    rollback) when it is gone."""
    lock_account(ctx.db, user.id)
    sheet = live_sheet(ctx.db, user.id, session_id, for_update=True)
    if sheet is None or sheet.public_id != public_id:
        ctx.db.rollback()
        return None
    return sheet


def save_sheet(
    ctx: Context, user: User, session_id: str, public_id: str, code: str
) -> CodesSaved | Refused:
    """I saved my codes: code #k typed back from the sheet (normalised) proves it was saved.
    Then, in one transaction, a waiting set becomes the account's and the old one is void, the
    event is recorded and the sheet's plaintext is deleted. A wrong code counts like any other
    code attempt and changes nothing else."""
    if live_sheet(ctx.db, user.id, session_id) is None:
        ctx.db.rollback()
        return Refused(Reason.GONE, SHEET_GONE)
    attempt = begin_attempt(ctx, PASSWORD, "new sheet", user)
    if isinstance(attempt, Refused):
        return attempt
    sheet = _the_shown_sheet(ctx, user, session_id, public_id)
    if sheet is None:
        return Refused(Reason.GONE, SHEET_GONE)
    number = sheet.check_number
    if not typed_back(ctx.keys, sheet, code):
        return attempt.fail(
            events.SHEET_CHECK_FAILED,
            f"That is not code #{number} of your new sheet ({public_id}). Find #{number} on "
            "the sheet you saved and type it.",
            Reason.WRONG_CODE,
        )
    attempt.succeed()
    old_voided = not sheet.in_use
    if old_voided:
        put_in_use(ctx.db, user.id, sheet)
        events.record_event(ctx, user.id, events.CODES_IN_USE, f"set {public_id}")
    else:
        events.record_event(ctx, user.id, events.CODES_SAVED, f"set {public_id}")
    remove_sheet(ctx.db, sheet)
    ctx.db.commit()
    if old_voided:
        tell_owner(ctx, user, CODES_IN_USE, f"set {public_id}")
    return CodesSaved(public_id=public_id, old_voided=old_voided)


def void_old_codes(
    ctx: Context,
    user: User,
    session_id: str,
    public_id: str,
    password: str,
    codes: tuple[str, ...] = (),
) -> Done | Refused:
    """Lost or stolen old sheet: confirmed again (security/confirm.py), the new set is in use at
    once and the old one is void, without waiting for a code typed back (the sheet still waits
    for "I saved my codes"). `public_id` names the sheet the person is looking at."""
    confirmed = confirm_it_is_you(ctx, user, "void old codes", password, codes)
    if isinstance(confirmed, Refused):
        return confirmed
    sheet = _the_shown_sheet(ctx, user, session_id, public_id)
    if sheet is None:
        return Refused(Reason.GONE, SHEET_GONE)
    if not confirmed.succeed(session_id):
        return Refused(Reason.GONE, SESSION_ENDED)
    voided = not sheet.in_use
    if voided:
        put_in_use(ctx.db, user.id, sheet)
        events.record_event(ctx, user.id, events.OLD_CODES_VOIDED, f"set {public_id} in use")
    ctx.db.commit()
    confirmed.tell()
    if voided:
        tell_owner(ctx, user, CODES_IN_USE, f"set {public_id}, the old one voided early")
    return Done()


def check_saved_code(ctx: Context, user: User, password: str, code: str) -> CodeIsValid | Refused:
    """Tell the owner which set `code` (normalised) belongs to: an unused code of the current
    set, or of a new sheet not yet in use. It is never spent.

    The whole check is one attempt of the password kind on this browser's counter, reserved
    before any hashing: signed-in checks share the device's budget with its log-in. The password
    is checked under that same reservation and does not clear the counter on its own: otherwise
    knowing the password would reset the count between guesses. Only a valid code clears it.
    """
    attempt = begin_attempt(ctx, PASSWORD, "check a saved code", user)
    if isinstance(attempt, Refused):
        return attempt
    if not verify_password(ctx.keys, password, user.password_hash):
        return attempt.fail(
            events.CONFIRM_FAILED, WRONG_PASSWORD_NOTHING_CHECKED, Reason.WRONG_PASSWORD
        )
    status = code_status(ctx.db, user.id)
    found = find_unused_code(ctx.db, ctx.keys, user.id, code)
    result = None
    if found is not None and status is not None:
        result = CodeIsValid(number=found[1], set_id=status.public_id)
    else:
        waiting = waiting_sheet(ctx.db, user.id)
        number = number_on_sheet(ctx.keys, waiting, code) if waiting is not None else None
        if waiting is not None and number is not None:
            result = CodeIsValid(number=number, set_id=waiting.public_id, waiting=True)
    if result is None:
        set_name = status.public_id if status else "none"
        return attempt.fail(
            events.CODE_CHECK_FAILED,
            f"That is not an unused code of your current set ({set_name}): it may be used "
            "already, mistyped, or from an older sheet.",
            Reason.WRONG_CODE,
        )
    attempt.succeed()
    waiting_note = " (new set, not yet in use)" if result.waiting else ""
    events.record_event(
        ctx,
        user.id,
        events.CODE_CHECKED,
        f"code #{result.number} of set {result.set_id}{waiting_note}",
    )
    ctx.db.commit()
    return result


def _set_password(ctx: Context, user: User, row: UserSession, password: str) -> int:
    """The one rule: a new password ends every other session of the account."""
    user.password_hash = hash_password(ctx.keys, password)
    events.record_event(ctx, user.id, events.PASSWORD_CHANGED)
    note_sessions_ending(ctx.db, user.id, ended_sessions.PASSWORD_CHANGED, keep_session_id=row.id)
    return end_other_sessions(ctx.db, user.id, keep_session_id=row.id)


def change_password(
    ctx: Context,
    user: User,
    row: UserSession,
    current_password: str,
    new_password: str,
    codes: tuple[str, ...] = (),
) -> PasswordChanged | Refused:
    confirmed = confirm_it_is_you(ctx, user, "change password", current_password, codes)
    if isinstance(confirmed, Refused):
        return confirmed
    if not confirmed.succeed(row.id):
        return Refused(Reason.GONE, SESSION_ENDED)
    ended = _set_password(ctx, user, row, new_password)
    ctx.db.commit()
    confirmed.tell()
    tell_owner(ctx, user, PASSWORD_CHANGED)
    return PasswordChanged(sessions_ended=ended)


def set_new_password(
    ctx: Context, user: User, row: UserSession, new_password: str
) -> PasswordChanged:
    """After a recovery (or securing the account): the new password this session must choose."""
    ended = _set_password(ctx, user, row, new_password)
    clear_password_change_flag(ctx.db, row.id)
    ctx.db.commit()
    tell_owner(ctx, user, PASSWORD_CHANGED)
    return PasswordChanged(sessions_ended=ended)


def start_app_setup(ctx: Context, user: User) -> Done:
    new_pending_secret(ctx.keys, user)
    ctx.db.commit()
    return Done()


def confirm_app_setup(
    ctx: Context, user: User, session_id: str, password: str, code: str
) -> AppTurnedOn | Refused:
    """Turn the app on with the password and the app's first code: one attempt of the password
    kind, reserved before any hashing, covers both. A right password alone does not clear the
    counter; only both right do. An account without codes gets its first sheet in the same
    transaction (the password was confirmed just now)."""
    attempt = password_attempt(ctx, user, password, "app set-up")
    if isinstance(attempt, Refused):
        return attempt
    if not turn_on_app(ctx, user, code):
        return attempt.fail(events.APP_SETUP_FAILED, WRONG_SETUP_CODE, Reason.WRONG_CODE)
    attempt.succeed()
    if not session_alive(ctx.db, session_id):
        ctx.db.rollback()
        return Refused(Reason.GONE, SESSION_ENDED)
    first_sheet = None
    if code_status(ctx.db, user.id) is None:
        first_sheet = _new_sheet(ctx, user, session_id, prepare_sheet(ctx.keys))
    ended = _end_others(
        ctx, user, session_id, "authentication app turned on", ended_sessions.APP_TURNED_ON
    )
    ctx.db.commit()
    tell_owner(ctx, user, APP_ON)
    return AppTurnedOn(first_sheet=first_sheet, sessions_ended=ended)


def turn_app_off(
    ctx: Context, user: User, session_id: str, password: str, codes: tuple[str, ...] = ()
) -> SessionsEnded | Refused:
    """Turn the app off, confirmed with what a sign-in asks (the password and the app's code,
    or a backup code for it): every other session ends."""
    confirmed = confirm_it_is_you(ctx, user, "turn the app off", password, codes)
    if isinstance(confirmed, Refused):
        return confirmed
    if not confirmed.succeed(session_id):
        return Refused(Reason.GONE, SESSION_ENDED)
    turn_off_app(ctx, user)
    ended = _end_others(
        ctx, user, session_id, "authentication app turned off", ended_sessions.APP_TURNED_OFF
    )
    ctx.db.commit()
    confirmed.tell()
    tell_owner(ctx, user, APP_OFF)
    return SessionsEnded(count=ended)


def _end_others(ctx: Context, user: User, session_id: str, why: str, reason: str) -> int:
    """A change of factors ends every other session (a copied cookie dies with it); each
    ended browser is told `reason` when it comes back (security/ended_sessions.py)."""
    note_sessions_ending(ctx.db, user.id, reason, keep_session_id=session_id)
    ended = end_other_sessions(ctx.db, user.id, keep_session_id=session_id)
    if ended:
        events.record_event(ctx, user.id, events.LOGGED_OUT, f"{ended} other sessions: {why}")
    return ended


def secure_account(
    ctx: Context, user: User, password: str, codes: tuple[str, ...]
) -> Secured | Refused:
    """After "Wasn't you?": end every session, void every code and any new sheet, and start
    over in this browser with a new password. Confirmed with what a sign-in or a recovery asks:
    on an account with an app two secrets (password, app code, backup codes), else the password
    or one backup code."""
    confirmed = confirm_it_is_you(ctx, user, "secure the account", password, codes)
    if isinstance(confirmed, Refused):
        return confirmed
    confirmed.succeed(None)
    return _secured(ctx, user, confirmed)


def _secured(
    ctx: Context, user: User, confirmed: Confirmed | None = None, detail: str = ""
) -> Secured:
    lock_every_door(ctx, user, detail)
    started = start_browser_session(ctx, user, must_change_password=True)
    ctx.db.commit()
    if confirmed is not None:
        confirmed.tell()
    return Secured(session=started)


BAD_SECURE_LINK = (
    "That link is not valid, was already used, is older than 7 days, or the account's email "
    "address changed since it was sent."
)


def secure_with_link(ctx: Context, token: str) -> Secured | Refused:
    """ "Wasn't you? Secure your account" from a notice mail: the link proves the verified
    address, the way in a stranger with a session or a code does not have. Once, within 7
    days, while the account still has that verified address: every session ends, every code
    and any new sheet is void, and this browser chooses a new password."""
    try:
        claims = signer(ctx.keys, SECURE_ACCOUNT).loads(token, max_age=SECURE_LINK_DAYS * 86400)
    except (BadSignature, SignatureExpired):
        return Refused(Reason.WRONG_SECRET, BAD_SECURE_LINK)
    user = ctx.db.get(User, claims.get("user")) if isinstance(claims, dict) else None
    if user is None or user.email_verified_at is None or user.email != claims.get("email"):
        return Refused(Reason.WRONG_SECRET, BAD_SECURE_LINK)
    if not spend_once(ctx.db, SECURE_ACCOUNT, claims):
        return Refused(Reason.WRONG_SECRET, BAD_SECURE_LINK)
    return _secured(ctx, user, detail="with the mailed link")


def log_out_session(ctx: Context, user: User, public_id: str) -> Done | Refused:
    """Log out one of the account's own sessions, named by its public id."""
    note_sessions_ending(ctx.db, user.id, ended_sessions.LOGGED_OUT_ELSEWHERE, public_id=public_id)
    if not end_session_by_public_id(ctx.db, user.id, public_id):
        ctx.db.rollback()
        return Refused(Reason.GONE, SESSION_GONE)
    events.record_event(ctx, user.id, events.LOGGED_OUT, "another session")
    ctx.db.commit()
    return Done()


def log_out_other_sessions(
    ctx: Context, user: User, row: UserSession, password: str, codes: tuple[str, ...]
) -> SessionsEnded | Refused:
    """What an intruder would do first, so it needs one secret: the password, a code from the
    app, or a backup code (a session alone is not enough)."""
    confirmed = confirm_it_is_you(ctx, user, "log out other sessions", password, codes, needed=1)
    if isinstance(confirmed, Refused):
        return confirmed
    if not confirmed.succeed(row.id):
        return Refused(Reason.GONE, SESSION_ENDED)
    note_sessions_ending(
        ctx.db, user.id, ended_sessions.LOGGED_OUT_ELSEWHERE, keep_session_id=row.id
    )
    ended = end_other_sessions(ctx.db, user.id, keep_session_id=row.id)
    events.record_event(ctx, user.id, events.LOGGED_OUT, f"{ended} other sessions")
    ctx.db.commit()
    confirmed.tell()
    return SessionsEnded(count=ended)


def dismiss_notice(ctx: Context, user: User, row: UserSession) -> Done:
    """The notice's "Got it, that was me": hides the code-use notice in this session only."""
    if dismiss_here(ctx.db, user, row):
        ctx.db.commit()
    return Done()
