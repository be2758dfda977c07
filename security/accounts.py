"""Accounts: identifiers, sign-up, password checks with the failure counter, recovery by code."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import SecurityEvent, User
from security import events
from security.attempts import (
    CODE,
    PASSWORD,
    Limits,
    Throttled,
    account_key,
    clear_failures,
    clear_password_failures,
    reserve_attempt,
    unknown_name_key,
)
from security.backup_codes import Redemption, find_unused_code, redeem_backup_code
from security.keys import Hasher
from security.passwords import hash_password, verify_password

USERNAME_PATTERN = re.compile(r"[a-z0-9._]{3,30}")
_HAS_LETTER = re.compile(r"[a-z]")
RESERVED_USERNAMES = frozenset(
    {"accounts", "settings", "static", "help", "home", "healthz", "admin", "api", "tour", "menu"}
)
_PHONE_SEPARATORS = re.compile(r"[\s().\-]")
_PHONE_PATTERN = re.compile(r"\+?[0-9]{7,15}")
MAX_IDENTIFIER_LENGTH = 254


class DuplicateAccount(ValueError):
    """The username, email or phone number belongs to another account."""


def normalise_username(raw: str) -> str:
    return raw.strip().lower()


def normalise_email(raw: str | None) -> str | None:
    value = (raw or "").strip().lower()
    return value or None


def normalise_phone(raw: str | None) -> str | None:
    """Digits with an optional leading +, or None when empty; ValueError when not a number."""
    value = _PHONE_SEPARATORS.sub("", raw or "")
    if not value:
        return None
    if not _PHONE_PATTERN.fullmatch(value):
        raise ValueError("Enter a phone number of 7 to 15 digits, like +1 555 010 0199.")
    return value


def username_problem(username: str) -> str | None:
    if not USERNAME_PATTERN.fullmatch(username):
        return "Use 3 to 30 characters: lowercase letters, digits, dots and underscores."
    if not _HAS_LETTER.search(username):
        # An all-digit name could be mistaken for someone's phone number at log-in.
        return "Use at least one letter, so the name cannot be mistaken for a phone number."
    if username in RESERVED_USERNAMES:
        return "This username is not available."
    return None


def normalise_identifier(identifier: str) -> str:
    """The one spelling of a log-in identifier: lower-case email or username, phone digits."""
    value = identifier.strip()
    if "@" in value:
        return value.lower()
    try:
        phone = normalise_phone(value)
    except ValueError:
        phone = None
    return phone if phone is not None else value.lower()


def find_user(db_session: Session, identifier: str) -> User | None:
    """The account a log-in identifier names: an email, a phone number, or a username.

    Usernames always contain a letter, so a phone-shaped identifier is never a username.
    """
    value = identifier.strip()
    if not value or len(value) > MAX_IDENTIFIER_LENGTH:
        return None
    normalised = normalise_identifier(value)
    if "@" in value:
        return db_session.scalar(select(User).where(User.email == normalised))
    if not _HAS_LETTER.search(normalised):
        return db_session.scalar(select(User).where(User.phone == normalised))
    return db_session.scalar(select(User).where(User.username == normalised))


def create_user(
    db_session: Session,
    hasher: Hasher,
    username: str,
    password: str,
    email: str | None = None,
    phone: str | None = None,
    display_name: str = "",
) -> User:
    """Create and commit an account; raises DuplicateAccount if an identifier is taken."""
    user = User(
        username=username,
        # Empty means "not given": NULL, so any number of accounts can leave these out.
        email=email or None,
        phone=phone or None,
        password_hash=hash_password(hasher, password),
        display_name=display_name or username,
    )
    db_session.add(user)
    try:
        db_session.flush()
    except IntegrityError as error:
        db_session.rollback()
        raise DuplicateAccount("An account with these details already exists.") from error
    events.record_event(db_session, user.id, events.SIGNED_UP)
    db_session.commit()
    return user


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking a secret: `user` is set only on success."""

    user: User | None = None
    throttled: Throttled | None = None
    failures_before: int = 0
    redemption: Redemption | None = None
    # Recovery with two backup codes: the first one, spent last.
    first_redemption: Redemption | None = None
    # The first factor passed, but the account has an app: the second factor comes next.
    needs_second_factor: bool = False
    first_code_digest: str | None = None
    # A refusal with its own message (not a wrong secret).
    problem: str | None = None
    # The "backup code used" event of this success (the last one, when two codes were used).
    code_event: SecurityEvent | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None


def _key_for(user: User | None, identifier: str) -> str:
    if user is not None:
        return account_key(user.id)
    return unknown_name_key(normalise_identifier(identifier))


def _refused_by_counter(
    db_session: Session, limits: Limits, user: User | None, key: str, kind: str, where: str
) -> CheckResult | None:
    """Reserve the attempt before any hashing; a CheckResult if the counter refuses it."""
    throttled = reserve_attempt(db_session, key, kind, limits)
    if throttled is None:
        return None
    events.log_event(events.THROTTLED, user.id if user else None, "refused", where)
    return CheckResult(throttled=throttled)


def _failed(db_session: Session, user: User | None, kind: str) -> CheckResult:
    """Record a wrong secret: an event the owner sees, or only a log line for unknown names."""
    if user is not None:
        events.record_event(db_session, user.id, kind, outcome="failure")
        db_session.commit()
    else:
        events.log_event(kind, None, "failure", "unknown account")
    return CheckResult()


def check_password_login(
    db_session: Session, hasher: Hasher, limits: Limits, identifier: str, password: str
) -> CheckResult:
    """Counter first, then exactly one bcrypt check whether or not the account exists.

    On success the counter is cleared but not committed: the caller commits it together with
    the new session.
    """
    user = find_user(db_session, identifier)
    key = _key_for(user, identifier)
    refused = _refused_by_counter(db_session, limits, user, key, PASSWORD, "log-in")
    if refused is not None:
        return refused
    if not verify_password(hasher, password, user.password_hash if user else None):
        return _failed(db_session, user, events.LOGIN_FAILED)
    if user.totp_secret:
        # The password's own count starts again; the second factor's does not, so knowing the
        # password never resets the count between guesses of the app's code. The account's
        # total (`failures`) keeps this attempt until the second factor passes.
        clear_password_failures(db_session, key)
        db_session.commit()
        return CheckResult(user=user, needs_second_factor=True)
    return CheckResult(user=user, failures_before=clear_failures(db_session, key))


def confirm_password(
    db_session: Session, hasher: Hasher, limits: Limits, user: User, password: str
) -> CheckResult:
    """Re-entering the password for a sensitive action: same counter as the log-in form."""
    key = account_key(user.id)
    refused = _refused_by_counter(db_session, limits, user, key, PASSWORD, "confirm password")
    if refused is not None:
        return refused
    if not verify_password(hasher, password, user.password_hash):
        return _failed(db_session, user, events.CONFIRM_FAILED)
    failures_before = clear_failures(db_session, key)
    db_session.commit()
    return CheckResult(user=user, failures_before=failures_before)


def recover_with_backup_code(
    db_session: Session, hasher: Hasher, limits: Limits, identifier: str, code: str
) -> CheckResult:
    """Use one backup code (already normalised) for the account named by `identifier`.

    On success the code is marked used and the counter cleared, uncommitted: the caller ends
    the other sessions and starts the new one in the same transaction.
    """
    user = find_user(db_session, identifier)
    key = _key_for(user, identifier)
    refused = _refused_by_counter(db_session, limits, user, key, CODE, "backup code")
    if refused is not None:
        return refused
    if user is not None and user.totp_secret:
        # With an app on, one code is not enough: it is checked now and spent only when the
        # app's code, or a second backup code, passes too (same hashing work as below).
        found = find_unused_code(db_session, hasher, user.id, code)
        if found is None:
            return _failed(db_session, user, events.CODE_FAILED)
        return CheckResult(user=user, needs_second_factor=True, first_code_digest=found[0])
    redemption = redeem_backup_code(db_session, hasher, user.id if user else None, code)
    if redemption is None or user is None:
        return _failed(db_session, user, events.CODE_FAILED)
    failures_before = clear_failures(db_session, key)
    event = record_code_use(db_session, user.id, redemption)
    return CheckResult(
        user=user, failures_before=failures_before, redemption=redemption, code_event=event
    )


def use_own_backup_code(
    db_session: Session, hasher: Hasher, limits: Limits, user: User, code: str
) -> CheckResult:
    """A signed-in owner proving it is them with a backup code (which is spent). Uncommitted."""
    key = account_key(user.id)
    refused = _refused_by_counter(db_session, limits, user, key, CODE, "backup code")
    if refused is not None:
        return refused
    redemption = redeem_backup_code(db_session, hasher, user.id, code)
    if redemption is None:
        return _failed(db_session, user, events.CODE_FAILED)
    failures_before = clear_failures(db_session, key)
    event = record_code_use(db_session, user.id, redemption)
    return CheckResult(
        user=user, failures_before=failures_before, redemption=redemption, code_event=event
    )


def record_code_use(db_session: Session, user_id: int, redemption: Redemption) -> SecurityEvent:
    """The "backup code used" event: which code, and how many are left. The caller commits."""
    return events.record_event(
        db_session,
        user_id,
        events.CODE_USED,
        f"code #{redemption.number}, {redemption.codes_left} left",
    )


def set_new_password(db_session: Session, hasher: Hasher, user: User, password: str) -> None:
    """Store the new password and record it; the caller ends other sessions and commits."""
    user.password_hash = hash_password(hasher, password)
    events.record_event(db_session, user.id, events.PASSWORD_CHANGED)


@dataclass(frozen=True)
class SavedCodeCheck(CheckResult):
    """The outcome of "Check a saved code": `number` is set when the code is valid and unused."""

    number: int | None = None
    wrong_password: bool = False


def check_saved_code(
    db_session: Session, hasher: Hasher, limits: Limits, user: User, password: str, code: str
) -> SavedCodeCheck:
    """Tell the owner whether `code` (normalised) is an unused code of the current set, unspent.

    The whole check is one attempt of the `code` kind, reserved before any hashing, so it
    shares the account's limit with every other code entry. The password is checked under that
    same reservation and does not clear the counter on its own: otherwise knowing the password
    would reset the count between guesses. Only a valid code clears it, like any success.
    """
    key = account_key(user.id)
    refused = _refused_by_counter(db_session, limits, user, key, CODE, "check a saved code")
    if refused is not None:
        return SavedCodeCheck(throttled=refused.throttled)
    if not verify_password(hasher, password, user.password_hash):
        _failed(db_session, user, events.CONFIRM_FAILED)
        return SavedCodeCheck(wrong_password=True)
    found = find_unused_code(db_session, hasher, user.id, code)
    if found is None:
        _failed(db_session, user, events.CODE_CHECK_FAILED)
        return SavedCodeCheck()
    number = found[1]
    failures_before = clear_failures(db_session, key)
    events.record_event(db_session, user.id, events.CODE_CHECKED, f"code #{number}")
    db_session.commit()
    return SavedCodeCheck(user=user, failures_before=failures_before, number=number)
