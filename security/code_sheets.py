"""A new set's sheet while its owner saves it: made, shown again on reload, typed back, put in use.

The codes are kept encrypted (Fernet, the key ring's encryption key) only for the life of the
sheet: at most 30 minutes, bound to the session that asked (deleting the session deletes the
sheet), and wiped when the sheet is saved. These functions add to the use case's transaction.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.fernet import Fernet
from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from clock import now
from models import CodeSheet
from security.backup_codes import (
    CODES_PER_SET,
    generate_codes,
    install_set,
    new_digests,
    new_set_id,
)
from security.keys import KeyRing
from security.rows import rows_changed

SHEET_LIFETIME = timedelta(minutes=30)


@dataclass(frozen=True)
class Sheet:
    """What the sheet page, the download and the copy show: read back from the server's copy."""

    public_id: str
    created_at: datetime
    codes: list[str]
    # Already the account's set (a first set, or the old one was voided early).
    in_use: bool
    check_number: int


def _encrypt(keys: KeyRing, codes: list[str]) -> str:
    return Fernet(keys.encryption_key).encrypt(" ".join(codes).encode()).decode("ascii")


def _decrypt(keys: KeyRing, token: str) -> list[str]:
    return Fernet(keys.encryption_key).decrypt(token.encode("ascii")).decode().split()


@dataclass(frozen=True)
class PreparedSheet:
    """A new set made and hashed before any lock is taken (ten key derivations)."""

    public_id: str
    salt: str
    digests: list[str]
    codes_token: str
    check_number: int


def prepare_sheet(keys: KeyRing) -> PreparedSheet:
    codes = generate_codes()
    salt, digests = new_digests(keys, codes)
    return PreparedSheet(
        public_id=new_set_id(),
        salt=salt,
        digests=digests,
        codes_token=_encrypt(keys, codes),
        check_number=secrets.randbelow(CODES_PER_SET) + 1,
    )


def add_sheet(
    db_session: Session, prepared: PreparedSheet, user_id: int, session_id: str, in_use: bool
) -> CodeSheet:
    """The prepared set's sheet, in place of any earlier sheet of the account; with `in_use` its
    set becomes the account's at once. The caller holds the account's lock."""
    db_session.execute(delete(CodeSheet).where(CodeSheet.user_id == user_id))
    sheet = CodeSheet(
        user_id=user_id,
        session_id=session_id,
        public_id=prepared.public_id,
        salt=prepared.salt,
        digests=" ".join(prepared.digests),
        codes_token=prepared.codes_token,
        in_use=in_use,
        check_number=prepared.check_number,
        created_at=now(),
    )
    db_session.add(sheet)
    if in_use:
        put_in_use(db_session, user_id, sheet)
    return sheet


def remove_sheet(db_session: Session, sheet: CodeSheet) -> bool:
    """Delete the sheet (its plaintext with it); False if it was already gone."""
    return rows_changed(db_session.execute(delete(CodeSheet).where(CodeSheet.id == sheet.id))) == 1


def put_in_use(db_session: Session, user_id: int, sheet: CodeSheet) -> None:
    """The sheet's codes become the account's set; the old set is void."""
    install_set(
        db_session, user_id, sheet.public_id, sheet.salt, sheet.created_at, sheet.digests.split()
    )
    sheet.in_use = True


def _alive(sheet: CodeSheet) -> bool:
    """Younger than 30 minutes: the one rule for showing, saving and checking a sheet."""
    return now() - sheet.created_at <= SHEET_LIFETIME


# Built once, as every read of a sheet runs one of them.
_SHEET = select(CodeSheet).where(CodeSheet.user_id == bindparam("user_id"))
_SHEET_FOR_UPDATE = _SHEET.with_for_update()


def live_sheet(
    db_session: Session, user_id: int, session_id: str | None, for_update: bool = False
) -> CodeSheet | None:
    """The account's sheet if this session asked for it and it is younger than 30 minutes.
    `for_update` locks its row, so ending the session (which deletes it) waits for this
    transaction, and this transaction finds it gone if the session ended first."""
    query = _SHEET_FOR_UPDATE if for_update else _SHEET
    sheet = db_session.scalar(query, {"user_id": user_id})
    if sheet is None or sheet.session_id != session_id:
        return None
    return sheet if _alive(sheet) else None


def read_sheet(keys: KeyRing, sheet: CodeSheet) -> Sheet:
    return Sheet(
        public_id=sheet.public_id,
        created_at=sheet.created_at,
        codes=_decrypt(keys, sheet.codes_token),
        in_use=sheet.in_use,
        check_number=sheet.check_number,
    )


def typed_back(keys: KeyRing, sheet: CodeSheet, code: str) -> bool:
    """Is `code` (normalised) code #k of the sheet? Constant-time, no key derivation needed: the
    sheet's plaintext is at hand for its short life."""
    expected = _decrypt(keys, sheet.codes_token)[sheet.check_number - 1]
    return hmac.compare_digest(expected.encode(), code.encode())


def number_on_sheet(keys: KeyRing, sheet: CodeSheet, code: str) -> int | None:
    """The number of `code` on the sheet, or None."""
    found = None
    for number, candidate in enumerate(_decrypt(keys, sheet.codes_token), start=1):
        if hmac.compare_digest(candidate.encode(), code.encode()):
            found = number
    return found


def waiting_sheet(db_session: Session, user_id: int) -> CodeSheet | None:
    """The account's sheet not yet in use, from any session, while it lives."""
    sheet = db_session.scalar(select(CodeSheet).where(CodeSheet.user_id == user_id))
    return sheet if sheet is not None and not sheet.in_use and _alive(sheet) else None


def prune_sheets(db_session: Session) -> int:
    """Delete sheets past their 30 minutes (their sessions may live on)."""
    cutoff = now() - SHEET_LIFETIME
    return rows_changed(db_session.execute(delete(CodeSheet).where(CodeSheet.created_at < cutoff)))
