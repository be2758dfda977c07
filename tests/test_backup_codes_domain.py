"""Backup codes without HTTP: generation, input rules, storage, one derivation, single use."""

from __future__ import annotations

import math
import random
import secrets
from collections import Counter
from unittest import mock

import bcrypt
import pytest
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import func, select

from blueprints.context import app_context_of
from extensions import db
from models import BackupCode, BackupCodeSet, CodeSheet, SecurityEvent, User
from security import backup_codes
from security.backup_codes import (
    CODES_PER_SET,
    CodeFormatError,
    code_status,
    generate_codes,
    normalise_code_input,
    redeem_backup_code,
)
from security.keys import KeyRing
from security.sessions import start_session
from security.settings import get_new_codes
from tests.helpers import (
    PASSWORD,
    count,
    current_keys,
    give_codes,
    snapshot,
    table_dump,
    written_forms,
)


def test_a_set_is_ten_distinct_eight_digit_codes():
    """Checklist 3: N distinct codes, every time."""
    for _ in range(2000):
        codes = generate_codes()
        assert len(codes) == CODES_PER_SET
        assert len(set(codes)) == CODES_PER_SET
        assert all(len(code) == 8 and code.isascii() and code.isdigit() for code in codes)


def test_codes_come_from_secrets_even_with_random_sabotaged():
    """Checklist 1: the generator uses the CSPRNG; the `random` module is never consulted."""
    boom = mock.Mock(side_effect=AssertionError("random module used"))
    with (
        mock.patch.object(random, "random", boom),
        mock.patch.object(random, "randint", boom),
        mock.patch.object(random, "choice", boom),
        mock.patch.object(secrets, "randbelow", wraps=secrets.randbelow) as spy,
    ):
        codes = generate_codes()
    assert len(codes) == 10
    assert spy.call_count >= 10


def test_entropy_and_uniform_digits():
    """Checklist 2: 8 decimal digits = 26.6 bits (floor 20); digits are uniform."""
    codes = [code for _ in range(1250) for code in generate_codes()]
    # The value space the generator really uses: every position of a code takes all ten digits,
    # so the codes span 10 ** length values; log2 of that must reach 20 bits.
    (length,) = {len(code) for code in codes}
    bits = sum(math.log2(len({code[i] for code in codes})) for i in range(length))
    assert bits >= 20
    digits = Counter("".join(codes))
    total = sum(digits.values())
    assert set(digits) == set("0123456789")
    for share in digits.values():
        assert abs(share / total - 0.1) < 0.01


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12345678", "12345678"),
        ("1234 5678", "12345678"),
        ("1234-5678", "12345678"),
        ("  1234 5678\n", "12345678"),
        ("12 34 56 78", "12345678"),
        ("1234\u20115678", "12345678"),
    ],
)
def test_spaces_and_dashes_are_ignored(raw, expected):
    assert normalise_code_input(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter a backup code."),
        ("   ", "Enter a backup code."),
        (None, "Enter a backup code."),
        ("1234567", "8 digits"),
        ("123456789", "8 digits"),
        ("1234 567a", "8 digits"),
        ("abcdefgh", "8 digits"),
        ("１２３４５６７８", "8 digits"),
        ("١٢٣٤٥٦٧٨", "8 digits"),
        ("1234\x005678", "8 digits"),
        ("1" * 41, "too long"),
        ("1" * 1_000_000, "too long"),
    ],
)
def test_wrong_shapes_are_refused_with_a_reason(raw, message):
    """Checklist 18: only ASCII digits count; full-width and other scripts never match."""
    with pytest.raises(CodeFormatError) as error:
        normalise_code_input(raw)
    assert message in str(error.value)


def test_stored_codes_are_peppered_bcrypt_with_one_salt_per_set(app, user):
    """Checklist 12/13: bcrypt cost from config, one 128-bit salt per set, pepper outside the DB."""
    codes = give_codes(app, user)
    with app.app_context():
        code_set = db.session.scalar(select(BackupCodeSet))
        digests = db.session.scalars(select(BackupCode.digest).order_by(BackupCode.number)).all()
        hasher = current_keys()
    assert len(digests) == 10 and len(set(digests)) == 10
    cost = app.config["BACKUP_CODE_BCRYPT_COST"]
    assert all(d.startswith(f"$2b${cost:02d}$") for d in digests)
    assert all(d.startswith(code_set.salt) for d in digests)
    assert backup_codes.code_digest(hasher, codes[0], code_set.salt) == digests[0]
    other_pepper = KeyRing(pepper=b"another pepper", password_cost=4, code_cost=4)
    assert backup_codes.code_digest(other_pepper, codes[0], code_set.salt) != digests[0]


def test_production_cost_is_at_least_ten():
    from config import ProductionConfig

    assert ProductionConfig.BACKUP_CODE_BCRYPT_COST >= 10
    assert ProductionConfig.PASSWORD_BCRYPT_COST >= 12


def test_no_code_appears_in_any_table_dump(app, user, other_user):
    """Checklist 11: no plaintext or reversible copy, raw, spaced, dashed or base64."""
    codes = give_codes(app, user) + give_codes(app, other_user)
    dump = table_dump(app)
    assert snapshot(app)["backup_codes"]
    for code in codes:
        for form in written_forms(code):
            assert form not in dump


def test_verifying_costs_one_derivation_whatever_the_number_of_codes(app, user):
    """DESIGN: one key derivation per attempt (peers loop bcrypt over every code)."""
    codes = give_codes(app, user)
    with app.app_context():
        for code in ("00000000", codes[3]):
            with (
                mock.patch.object(bcrypt, "hashpw", wraps=bcrypt.hashpw) as hashpw,
                mock.patch.object(bcrypt, "checkpw", wraps=bcrypt.checkpw) as checkpw,
            ):
                redeem_backup_code(db.session, current_keys(), user, code)
                db.session.commit()
            assert hashpw.call_count == 1
            assert checkpw.call_count == 0


def test_unknown_account_and_account_without_codes_do_the_same_work(app, user):
    with app.app_context():
        for user_id in (None, user):
            with mock.patch.object(bcrypt, "hashpw", wraps=bcrypt.hashpw) as hashpw:
                assert redeem_backup_code(db.session, current_keys(), user_id, "12345678") is None
            assert hashpw.call_count == 1


def test_a_code_works_once(app, user):
    """Checklist 15."""
    codes = give_codes(app, user)
    with app.app_context():
        first = redeem_backup_code(db.session, current_keys(), user, codes[2])
        db.session.commit()
        again = redeem_backup_code(db.session, current_keys(), user, codes[2])
        other = redeem_backup_code(db.session, current_keys(), user, codes[5])
        db.session.commit()
    assert first is not None and first.number == 3 and first.codes_left == 9
    assert again is None
    assert other is not None and other.number == 6 and other.codes_left == 8


def test_another_accounts_code_fails_and_is_not_consumed(app, user, other_user):
    """Checklist 17."""
    give_codes(app, user)
    bobs = give_codes(app, other_user)
    with app.app_context():
        assert redeem_backup_code(db.session, current_keys(), user, bobs[0]) is None
        db.session.commit()
        used = db.session.scalar(
            select(func.count()).select_from(BackupCode).where(BackupCode.used_at.is_not(None))
        )
        assert used == 0
        assert redeem_backup_code(db.session, current_keys(), other_user, bobs[0]) is not None


def test_regenerating_voids_every_old_code(app, user):
    """Checklist 8."""
    old = give_codes(app, user)
    new = give_codes(app, user)
    with app.app_context():
        for code in old:
            if code not in new:
                assert redeem_backup_code(db.session, current_keys(), user, code) is None
        assert redeem_backup_code(db.session, current_keys(), user, new[0]) is not None
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(BackupCodeSet)) == 1
        assert db.session.scalar(select(func.count()).select_from(BackupCode)) == 10


def test_a_failed_event_insert_leaves_the_old_set_whole(app, user):
    """Checklist 8: "get new codes" writes the new set's sheet, then the insert of its event
    fails: the one transaction rolls back, so the old set is whole and still works, no new set
    or sheet, no event."""
    old = give_codes(app, user)

    def refuse_insert(mapper, connection, target):
        raise RuntimeError("the event's insert failed")

    with app.app_context():
        ctx = app_context_of(app)
        row, _ = start_session(db.session, user, "192.0.2.7", "a browser")
        db.session.commit()
        session_id = row.id
    before = snapshot(app, ignore=("attempt_counters",))
    with app.app_context():
        account = db.session.get(User, user)
        sqlalchemy_event.listen(SecurityEvent, "before_insert", refuse_insert)
        try:
            with pytest.raises(RuntimeError, match="event's insert failed"):
                get_new_codes(ctx, account, session_id, PASSWORD)
        finally:
            sqlalchemy_event.remove(SecurityEvent, "before_insert", refuse_insert)
        db.session.rollback()
    assert snapshot(app, ignore=("attempt_counters",)) == before
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BackupCodeSet)) == 1
        assert count(app, CodeSheet) == 0
        assert count(app, SecurityEvent, SecurityEvent.kind == "codes_generated") == 0
        assert redeem_backup_code(db.session, current_keys(), user, old[9]) is not None
        db.session.commit()


def test_status_counts_used_numbers(app, user):
    codes = give_codes(app, user)
    with app.app_context():
        for index in (0, 4):
            redeem_backup_code(db.session, current_keys(), user, codes[index])
            db.session.commit()
        status = code_status(db.session, user)
    assert status.used_numbers == [1, 5]
    assert status.codes_left == 8
    assert len(status.public_id) == 4
