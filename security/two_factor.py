"""The second factor: finishing a log-in or a recovery with the app or another backup code."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from models import BackupCode, BackupCodeSet, PendingLogin, User, UserSession
from security import events
from security.accounts import CheckResult, _failed, _refused_by_counter, record_code_use
from security.attempts import PASSWORD, SECOND_FACTOR, Limits, account_key, clear_failures
from security.backup_codes import Redemption, _derive, use_code_digest
from security.clock import now
from security.keys import Hasher
from security.passwords import verify_password
from security.totp import (
    accept_code,
    decrypt_secret,
    encrypt_secret,
    matching_step,
    new_secret,
)

LOGIN = "login"
RECOVERY = "recovery"
FIRST_CODE_GONE = "first code gone"
WRONG_SETUP_CODE = "wrong set-up code"


def _spend_first_code(db_session: Session, pending: PendingLogin) -> tuple[bool, Redemption | None]:
    """For a recovery, spend the first backup code now that the second factor passed.

    (False, None) if that code was used meanwhile; (True, None) for an ordinary log-in.
    """
    if pending.purpose != RECOVERY:
        return True, None
    first = use_code_digest(db_session, pending.user_id, pending.first_code_digest or "")
    if first is None:
        db_session.rollback()
        return False, None
    return True, first


def _open_second_factor(
    db_session: Session, limits: Limits, pending: PendingLogin, what: str
) -> tuple[User, str, CheckResult | None]:
    """The account of the pending log-in, its counter key, and a refusal if the counter says so."""
    user = db_session.get(User, pending.user_id)
    key = account_key(user.id)
    return user, key, _refused_by_counter(db_session, limits, user, key, SECOND_FACTOR, what)


def finish_with_app(
    db_session: Session, hasher: Hasher, limits: Limits, pending: PendingLogin, code: str
) -> CheckResult:
    """The 6-digit app code (normalised) as the second factor. Uncommitted on success."""
    user, key, refused = _open_second_factor(db_session, limits, pending, "app code")
    if refused is not None:
        return refused
    if not accept_code(db_session, hasher, user, code, now()):
        db_session.rollback()
        return _failed(db_session, user, events.APP_CODE_FAILED)
    spent, first = _spend_first_code(db_session, pending)
    if not spent:
        return CheckResult(problem=FIRST_CODE_GONE)
    # The password (or the first code) and this code were both counted in advance.
    failures_before = clear_failures(db_session, key, attempts=2)
    event = record_code_use(db_session, user.id, first) if first is not None else None
    return CheckResult(
        user=user, failures_before=failures_before, redemption=first, code_event=event
    )


def finish_with_backup_code(
    db_session: Session, hasher: Hasher, limits: Limits, pending: PendingLogin, code: str
) -> CheckResult:
    """A backup code (normalised) as the second factor. Uncommitted on success."""
    user, key, refused = _open_second_factor(db_session, limits, pending, "backup code")
    if refused is not None:
        return refused
    derived = _derive(db_session, hasher, user.id, code)
    same_as_first = derived is not None and derived[1] == pending.first_code_digest
    redemption = None
    if derived is not None and not same_as_first:
        redemption = use_code_digest(db_session, user.id, derived[1])
    if redemption is None:
        db_session.rollback()
        return _failed(db_session, user, events.CODE_FAILED)
    spent, first = _spend_first_code(db_session, pending)
    if not spent:
        return CheckResult(problem=FIRST_CODE_GONE)
    failures_before = clear_failures(db_session, key, attempts=2)
    if first is not None:
        # Spent after the second one, so its count of codes left is the final one.
        record_code_use(db_session, user.id, first)
        redemption = Redemption(number=redemption.number, codes_left=first.codes_left)
    event = record_code_use(db_session, user.id, redemption)
    return CheckResult(
        user=user,
        failures_before=failures_before,
        redemption=redemption,
        first_redemption=first,
        code_event=event,
    )


def start_app_setup(db_session: Session, hasher: Hasher, user: User) -> None:
    """A new secret waits for its first code; any earlier pending secret is replaced. Commits."""
    user.totp_pending_secret = encrypt_secret(hasher, new_secret())
    db_session.commit()


def pending_app_secret(hasher: Hasher, user: User) -> str | None:
    return decrypt_secret(hasher, user.totp_pending_secret) if user.totp_pending_secret else None


def turn_on_app(db_session: Session, hasher: Hasher, user: User, code: str) -> bool:
    """Turn the app on if `code` comes from the pending secret. The caller commits."""
    secret = pending_app_secret(hasher, user)
    step = matching_step(secret, code, now()) if secret else None
    if step is None:
        return False
    user.totp_secret = user.totp_pending_secret
    user.totp_pending_secret = None
    user.totp_enabled_at = now()
    # The code that turned it on cannot be replayed to log in.
    user.totp_last_step = step
    events.record_event(db_session, user.id, events.APP_TURNED_ON)
    return True


def confirm_app_setup(
    db_session: Session, hasher: Hasher, limits: Limits, user: User, password: str, code: str
) -> CheckResult:
    """Turn the app on with the password and the app's first code: one attempt of the password
    kind, reserved before any hashing, covers both. A right password alone does not clear the
    counter; only both right do (and the caller commits that with the new app)."""
    key = account_key(user.id)
    refused = _refused_by_counter(db_session, limits, user, key, PASSWORD, "app set-up")
    if refused is not None:
        return refused
    if not verify_password(hasher, password, user.password_hash):
        return _failed(db_session, user, events.CONFIRM_FAILED)
    if not turn_on_app(db_session, hasher, user, code):
        db_session.rollback()
        _failed(db_session, user, events.APP_SETUP_FAILED)
        return CheckResult(problem=WRONG_SETUP_CODE)
    return CheckResult(user=user, failures_before=clear_failures(db_session, key))


def turn_off_app(db_session: Session, user: User) -> None:
    """The caller has checked the password and commits. Backup codes stay (see decisions)."""
    user.totp_secret = None
    user.totp_pending_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    events.record_event(db_session, user.id, events.APP_TURNED_OFF)


def secure_account(db_session: Session, user: User) -> None:
    """After "Wasn't you?": end every session, void the remaining codes. The caller commits."""
    db_session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    db_session.execute(delete(BackupCode).where(BackupCode.user_id == user.id))
    db_session.execute(delete(BackupCodeSet).where(BackupCodeSet.user_id == user.id))
    user.clear_code_notice()
    events.record_event(db_session, user.id, events.ACCOUNT_SECURED)
