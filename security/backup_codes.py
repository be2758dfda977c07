"""Backup codes: generation, peppered bcrypt digests with one salt per set, atomic redemption."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import bcrypt
from sqlalchemy import bindparam, delete, exists, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from clock import now
from models import BackupCode, BackupCodeSet, CodeSheet
from security.accounts import NO_ACCOUNT, lock_account
from security.keys import KeyRing
from security.read_ahead import ReadAhead, take

CODES_PER_SET = 10
CODE_DIGITS = 8
MAX_INPUT_LENGTH = 40
LOW_CODES_WARNING = 2
SET_ID_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SET_ID_LENGTH = 4

_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015]")


class CodeFormatError(ValueError):
    """The input is not shaped like a backup code; it is not counted as a guess."""


@dataclass(frozen=True)
class NewCodeSet:
    public_id: str
    created_at: datetime
    codes: list[str]


@dataclass(frozen=True)
class Redemption:
    number: int
    codes_left: int


@dataclass(frozen=True)
class CodeStatus:
    public_id: str
    created_at: datetime
    used_numbers: list[int]

    @property
    def codes_left(self) -> int:
        return CODES_PER_SET - len(self.used_numbers)


def generate_codes(count: int = CODES_PER_SET) -> list[str]:
    """`count` distinct 8-digit codes from the operating system's CSPRNG."""
    codes: list[str] = []
    while len(codes) < count:
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        if code not in codes:
            codes.append(code)
    return codes


def format_code(code: str) -> str:
    return f"{code[:4]} {code[4:]}"


def typed_digits(
    raw: str | None,
    digits: int,
    max_length: int,
    error: type[CodeFormatError],
    messages: tuple[str, str, str],
) -> str:
    """The rule for every typed code: spaces and dashes dropped, then exactly `digits` ASCII
    digits. Otherwise `error` with the message for empty, too long, or the wrong shape."""
    empty, too_long, wrong_shape = messages
    if raw is None or not raw.strip():
        raise error(empty)
    if len(raw) > max_length:
        raise error(too_long)
    compact = _SEPARATORS.sub("", raw)
    if not re.fullmatch(rf"[0-9]{{{digits}}}", compact):
        raise error(wrong_shape)
    return compact


def normalise_code_input(raw: str | None) -> str:
    """Drop spaces and dashes; accept exactly eight ASCII digits, or raise CodeFormatError."""
    return typed_digits(
        raw,
        CODE_DIGITS,
        MAX_INPUT_LENGTH,
        CodeFormatError,
        (
            "Enter a backup code.",
            "That is too long for a backup code. A code has 8 digits.",
            "A backup code is 8 digits, like 1234 5678.",
        ),
    )


def code_digest(keys: KeyRing, code: str, salt: str) -> str:
    """bcrypt(base64(HMAC-SHA256(pepper, code)), set salt): one key derivation per call."""
    keyed = base64.b64encode(hmac.new(keys.pepper, code.encode(), hashlib.sha256).digest())
    return bcrypt.hashpw(keyed, salt.encode("ascii")).decode("ascii")


@cache
def _dummy_salt(cost: int) -> str:
    return bcrypt.gensalt(rounds=cost).decode("ascii")


def new_set_id() -> str:
    return "".join(secrets.choice(SET_ID_ALPHABET) for _ in range(SET_ID_LENGTH))


def install_set(
    db_session: Session,
    user_id: int,
    public_id: str,
    salt: str,
    created_at: datetime,
    digests: list[str],
) -> None:
    """Make these digests the account's set, in place of the old one, in the use case's
    transaction."""
    lock_account(db_session, user_id)
    db_session.execute(delete(BackupCode).where(BackupCode.user_id == user_id))
    db_session.execute(delete(BackupCodeSet).where(BackupCodeSet.user_id == user_id))
    code_set = BackupCodeSet(user_id=user_id, public_id=public_id, salt=salt, created_at=created_at)
    db_session.add(code_set)
    db_session.flush()
    db_session.add_all(
        BackupCode(set_id=code_set.id, user_id=user_id, number=number, digest=digest)
        for number, digest in enumerate(digests, start=1)
    )


def new_digests(keys: KeyRing, codes: list[str]) -> tuple[str, list[str]]:
    """A fresh 128-bit set salt and the codes' digests under it: the set's key derivations."""
    salt = bcrypt.gensalt(rounds=keys.code_cost).decode("ascii")
    return salt, [code_digest(keys, code, salt) for code in codes]


def replace_code_set(db_session: Session, keys: KeyRing, user_id: int) -> NewCodeSet:
    """Put a new set in place of the old one, in the use case's transaction; returns the
    plaintext codes, which are never stored readable."""
    codes = generate_codes()
    salt, digests = new_digests(keys, codes)
    created_at = now()
    public_id = new_set_id()
    install_set(db_session, user_id, public_id, salt, created_at, digests)
    # Plain values, not the row's attributes: after the commit a concurrent replacement may
    # already have deleted that row, and reading an expired attribute would reload it.
    return NewCodeSet(public_id=public_id, created_at=created_at, codes=codes)


def derive_code(
    db_session: Session, keys: KeyRing, user_id: int | None, code: str
) -> tuple[int, str] | None:
    """(current set id, digest of `code` under that set's salt): the one derivation of a check.

    Unknown accounts and accounts without codes derive against a dummy salt and get None. An
    unknown account reads the salt of an account id that matches nothing (`NO_ACCOUNT`): the
    same statement as a real account's.
    """
    code_set = db_session.execute(
        select(BackupCodeSet.id, BackupCodeSet.salt).where(
            BackupCodeSet.user_id == (NO_ACCOUNT if user_id is None else user_id)
        )
    ).first()
    if code_set is None:
        code_digest(keys, code, _dummy_salt(keys.code_cost))
        return None
    return code_set.id, code_digest(keys, code, code_set.salt)


def use_code_digest(db_session: Session, user_id: int, digest: str) -> Redemption | None:
    """Mark the unused code with this digest used, in one conditional UPDATE. Not committed.
    The account's lock comes first, as everywhere (security/accounts.py:lock_account)."""
    lock_account(db_session, user_id)
    set_id = select(BackupCodeSet.id).where(BackupCodeSet.user_id == user_id).scalar_subquery()
    used = db_session.execute(
        update(BackupCode)
        .where(
            BackupCode.user_id == user_id,
            BackupCode.set_id == set_id,
            BackupCode.digest == digest,
            BackupCode.used_at.is_(None),
        )
        .values(used_at=now())
        .returning(BackupCode.number, BackupCode.set_id)
    ).all()
    if len(used) != 1:
        return None
    left = db_session.scalar(
        select(func.count())
        .select_from(BackupCode)
        .where(BackupCode.set_id == used[0].set_id, BackupCode.used_at.is_(None))
    )
    return Redemption(number=used[0].number, codes_left=int(left or 0))


def redeem_backup_code(
    db_session: Session, keys: KeyRing, user_id: int | None, code: str
) -> Redemption | None:
    """Use `code` for the account: one derivation, one conditional UPDATE (not committed). None
    if it fails.

    `code` must already be normalised. Unknown accounts and accounts without codes do the same
    work as real ones: one derivation, then the account's lock and the conditional UPDATE, which
    match nothing (`NO_ACCOUNT` for an unknown one).
    """
    derived = derive_code(db_session, keys, user_id, code)
    if derived is None:
        use_code_digest(db_session, NO_ACCOUNT if user_id is None else user_id, "")
        return None
    if user_id is None:
        return None
    return use_code_digest(db_session, user_id, derived[1])


def find_unused_code(
    db_session: Session, keys: KeyRing, user_id: int | None, code: str, lock: bool = False
) -> tuple[str, int] | None:
    """(digest, number) of `code` if it is an unused code of the account, without using it.

    `lock`: take the account's lock after the derivation, as a redemption does before its
    UPDATE, so that the check costs the statements a redemption costs (not committed)."""
    derived = derive_code(db_session, keys, user_id, code)
    if lock and user_id is not None:
        lock_account(db_session, user_id)
    if derived is None:
        return None
    set_id, digest = derived
    number = db_session.scalar(
        select(BackupCode.number).where(
            BackupCode.user_id == user_id,
            BackupCode.set_id == set_id,
            BackupCode.digest == digest,
            BackupCode.used_at.is_(None),
        )
    )
    return None if number is None else (digest, number)


def _code_status_for(account_id) -> Select:
    """The current set's id and date, with one row per used code (its number), of the account
    `account_id` names (a bound parameter, or the session's account when read ahead)."""
    return (
        select(BackupCodeSet.public_id, BackupCodeSet.created_at, BackupCode.number)
        .outerjoin(
            BackupCode,
            (BackupCode.set_id == BackupCodeSet.id) & BackupCode.used_at.is_not(None),
        )
        .where(BackupCodeSet.user_id == account_id)
        .order_by(BackupCode.number)
    )


def _code_status_and_sheet_for(account_id) -> Select:
    """The same, and whether the account has a sheet on the server (saved or not, of any
    session)."""
    return _code_status_for(account_id).add_columns(
        exists().where(CodeSheet.user_id == account_id).label("sheet")
    )


# Built once (every page about codes reads it): building a statement costs more Python than
# running it. The pages that read it first thing read it ahead, with the session lookup.
_CODE_STATUS = _code_status_for(bindparam("user_id"))
_CODE_STATUS_AND_SHEET = _code_status_and_sheet_for(bindparam("user_id"))
CODE_STATUS = ReadAhead("code status", _code_status_for)
CODE_STATUS_AND_SHEET = ReadAhead("code status and sheet", _code_status_and_sheet_for)


def code_status(db_session: Session, user_id: int) -> CodeStatus | None:
    """The current set's id, date and used numbers, or None if the account has no codes."""
    rows = take(db_session, CODE_STATUS, user_id)
    if rows is None:
        rows = db_session.execute(_CODE_STATUS, {"user_id": user_id}).all()
    return _status_of(rows)


def code_status_and_sheet(db_session: Session, user_id: int) -> tuple[CodeStatus | None, bool]:
    """`code_status`, and False when the account surely has no sheet on the server, in the one
    statement (True also when it has no codes: the status's statement then returns no row)."""
    rows = take(db_session, CODE_STATUS_AND_SHEET, user_id)
    if rows is None:
        rows = db_session.execute(_CODE_STATUS_AND_SHEET, {"user_id": user_id}).all()
    return _status_of(rows), not rows or bool(rows[0].sheet)


def _status_of(rows) -> CodeStatus | None:
    if not rows:
        return None
    used = [row.number for row in rows if row.number is not None]
    return CodeStatus(public_id=rows[0].public_id, created_at=rows[0].created_at, used_numbers=used)
