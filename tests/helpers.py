"""Helpers the tests share: a person-like client, users and codes made directly, table reads.

Fixtures live in conftest.py; everything else a test imports comes from here or `tools/`.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime

import pyotp
import pytest
from flask import Flask, current_app
from flask_migrate import upgrade
from sqlalchemy import func, select, text

import clock
from blueprints.context import app_context_of
from config import normalise_database_url
from extensions import db
from models import (
    AttemptCounter,
    BackupCode,
    BackupCodeSet,
    CodeSheet,
    PendingLogin,
    SecurityEvent,
    TrustedDevice,
    User,
    UserSession,
)
from security.attempts import account_key, unknown_name_key
from security.backup_codes import replace_code_set
from security.keys import KeyRing
from security.outcomes import Refused
from security.signing_in import register_account
from security.totp import encrypt_secret
from security.trusted_devices import device_key
from tools.inprocess import PASSWORD, Person, codes_from, fresh_tables, sheet_id_from
from tools.live import csrf_from

__all__ = ["PASSWORD", "Person", "codes_from", "csrf_from", "fresh_tables", "sheet_id_from"]

# The frozen clock's start: 10 s into a 30-second app-code step, so a step boundary is never near.
T0 = datetime(2026, 11, 26, 9, 0, 10)


def database_uri(tmp_path, name: str = "test.db") -> str:
    """`DATABASE_URL` (normalised) when it is set, else a SQLite file `name` in `tmp_path`.

    Apps on `DATABASE_URL` share one database: start them with `fresh_tables(app)`.
    """
    if os.environ.get("DATABASE_URL"):
        return normalise_database_url(os.environ["DATABASE_URL"])
    return f"sqlite:///{tmp_path / name}"


def current_keys() -> KeyRing:
    """The key ring of the app whose context is active."""
    return app_context_of(current_app).keys


def make_user(app: Flask, username: str = "alice", password: str = PASSWORD, **extra) -> int:
    with app.app_context():
        created = register_account(app_context_of(app), username, password, **extra)
        assert not isinstance(created, Refused), created
        return created.id


def give_codes(app: Flask, user_id: int) -> list[str]:
    with app.app_context():
        ctx = app_context_of(app)
        codes = replace_code_set(ctx.db, ctx.keys, user_id).codes
        ctx.db.commit()
        return codes


def turn_on_app(app: Flask, user_id: int) -> str:
    """Turn an authentication app on for the account directly; returns its secret."""
    secret = pyotp.random_base32()
    with app.app_context():
        user = db.session.get(User, user_id)
        user.totp_secret = encrypt_secret(app_context_of(app).keys, secret)
        user.totp_enabled_at = clock.now()
        db.session.commit()
    return secret


def user_by_name(app: Flask, username: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        if user is not None:
            db.session.expunge(user)
        return user


def count(app: Flask, model, *where) -> int:
    """How many rows of `model` (matching `where`) the database holds."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def device_counter(app: Flask) -> AttemptCounter | None:
    """The one trusted device's failure counter (tests with one signed-in browser)."""
    with app.app_context():
        counter = db.session.scalar(
            select(AttemptCounter).where(AttemptCounter.key.startswith("device:"))
        )
        if counter is not None:
            db.session.expunge(counter)
        return counter


def wrong_code(codes: list[str], index: int) -> str:
    """An 8-digit code that is not one of `codes`, different for every `index`."""
    candidate = f"{index:08d}"
    return candidate if candidate not in codes else f"{99999999 - index:08d}"


def written_forms(code: str) -> list[str]:
    """Every way a code could stand in a table: raw, spaced, dashed, base64, hex."""
    return [
        code,
        f"{code[:4]} {code[4:]}",
        f"{code[:4]}-{code[4:]}",
        base64.b64encode(code.encode()).decode(),
        code.encode().hex(),
    ]


def table_dump(app: Flask) -> str:
    """Every row of every table as text, on SQLite and PostgreSQL alike."""
    return "\n".join(f"{table} {row}" for table, rows in snapshot(app).items() for row in rows)


def snapshot(app: Flask, ignore: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every row of every table (minus `ignore`), to show that a refused request changed nothing."""
    with app.app_context():
        return {
            table.name: sorted(
                tuple(str(value) for value in row) for row in db.session.execute(table.select())
            )
            for table in db.metadata.sorted_tables
            if table.name not in ignore
        }


# Every table whose rows belong to one account (by a user_id column).
OWNED = (UserSession, PendingLogin, BackupCodeSet, BackupCode, CodeSheet, SecurityEvent)


def counter_keys(app: Flask, user_ids: list[int]) -> list[str]:
    """The keys of every failure counter these accounts can have: by id, name, trusted device."""
    with app.app_context():
        names = db.session.scalars(select(User.username).where(User.id.in_(user_ids)))
        devices = db.session.scalars(
            select(TrustedDevice.id).where(TrustedDevice.user_id.in_(user_ids))
        )
        return (
            [account_key(i) for i in user_ids]
            + [unknown_name_key(n) for n in names]
            + [device_key(d) for d in devices]
        )


def rows_of(app: Flask, user_ids: list[int], keys: list[str]) -> dict[str, int]:
    """How many rows each table holds for these accounts, and counters under `keys`."""
    found = {"users": count(app, User, User.id.in_(user_ids))}
    for model in (*OWNED, TrustedDevice):
        found[model.__tablename__] = count(app, model, model.user_id.in_(user_ids))
    found["attempt_counters"] = count(app, AttemptCounter, AttemptCounter.key.in_(keys))
    return found


def postgresql_url() -> str:
    """The tests' PostgreSQL URL, or skip: cutting a database connection needs PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "postgresql+")):
        pytest.skip(
            "cutting the database connection needs PostgreSQL: set DATABASE_URL to a "
            "postgresql:// URL (.ci/run's second pass does)"
        )
    return url


def redis_url() -> str:
    """The tests' Redis URL, or skip."""
    url = os.environ.get("RATELIMIT_STORAGE_URI", "")
    if not url.startswith("redis://"):
        pytest.skip(
            "cutting Redis needs one: set RATELIMIT_STORAGE_URI to a redis:// URL (.ci/run's "
            "second pass sets redis://127.0.0.1:6379/0)"
        )
    return url


def migrate(app, revision: str = "head") -> None:
    """The database as `flask db upgrade` leaves it (fresh_tables made it with create_all)."""
    with app.app_context():
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
        upgrade(revision=revision)


def forget_migrations(app) -> None:
    """Leave a shared (PostgreSQL) database as the other tests expect it: no alembic_version."""
    with app.app_context():
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
