"""Accounts: identifiers, finding the account a name means, adding one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import User
from security.keys import KeyRing
from security.passwords import hash_password

USERNAME_PATTERN = re.compile(r"[a-z0-9._]{3,30}")
# Every name an account can have: sign-up's, and a demo sandbox's, which alone has hyphens
# (security/demo.py), so no one can sign up as one.
ACCOUNT_NAME_PATTERN = re.compile(r"[a-z0-9._-]{3,30}")
_HAS_LETTER = re.compile(r"[a-z]")
RESERVED_USERNAMES = frozenset(
    {"accounts", "settings", "static", "help", "home", "healthz", "readyz", "metrics", "admin"}
    | {"api", "tour", "menu"}
)
_PHONE_SEPARATORS = re.compile(r"[\s().\-]")
_PHONE_PATTERN = re.compile(r"\+?[0-9]{7,15}")
MAX_IDENTIFIER_LENGTH = 254
# An account id no row has (ids start at 1): statements aimed at it do an account's database
# work and change nothing, so an unknown name costs what a real account costs.
NO_ACCOUNT = 0


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


@dataclass(frozen=True)
class Holders:
    """Who already holds what a sign-up asks for."""

    username_taken: bool
    email_owner: User | None
    phone_owner: User | None


def holders_of(db_session: Session, username: str, email: str | None, phone: str | None) -> Holders:
    """The accounts that hold this username, email or phone (all normalised), if any."""
    taken = db_session.scalar(select(User.id).where(User.username == username)) is not None
    email_owner = db_session.scalar(select(User).where(User.email == email)) if email else None
    phone_owner = db_session.scalar(select(User).where(User.phone == phone)) if phone else None
    return Holders(username_taken=taken, email_owner=email_owner, phone_owner=phone_owner)


def lock_account(db_session: Session, user_id: int) -> None:
    """Take the account row's write lock for the rest of the transaction, so that changes of one
    account's codes, sheet and counter run one after the other. Every use case takes it before
    the counter row (Attempt.succeed does), so two of them never wait on each other in opposite
    order. An update that changes no key column: PostgreSQL locks it FOR NO KEY UPDATE, which
    foreign-key checks of new rows (sessions, events) do not wait on; SQLite locks the database."""
    db_session.execute(update(User).where(User.id == user_id).values(id=User.id))


def add_account(
    db_session: Session,
    keys: KeyRing,
    username: str,
    password: str,
    email: str | None = None,
    phone: str | None = None,
    display_name: str = "",
    password_hash: str | None = None,
) -> User:
    """Add an account to the use case's transaction; DuplicateAccount (after a rollback) if an
    identifier is taken. `password_hash`, when given, is `password`'s hash made beforehand."""
    user = User(
        username=username,
        # Empty means "not given": NULL, so any number of accounts can leave these out.
        email=email or None,
        phone=phone or None,
        password_hash=password_hash or hash_password(keys, password),
        display_name=display_name or username,
    )
    db_session.add(user)
    try:
        db_session.flush()
    except IntegrityError as error:
        db_session.rollback()
        raise DuplicateAccount("An account with these details already exists.") from error
    return user
