"""The per-account failure counter: checked before any hashing, race-free, with growing back-off.

Every check of a secret first reserves an attempt by a compare-and-swap on the counter row, which
counts it as a failure in advance. A success clears the row. So when many requests arrive at once,
only as many as the back-off allows are ever evaluated, and a throttled request does no hashing.

The owner is told of fewer: `failures` counts only the checks answered with a wrong secret
(`count_answered_failure`), so a reserved check that never got its answer (the worker killed, a
database error) counts for the wait but is never reported as a failed attempt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clock import now
from models import AttemptCounter
from security.rows import rows_changed

# bandit B105: the kind of check, not a password.
PASSWORD = "password"  # nosec B105
CODE = "code"
# A code typed after the password (or after a first backup code) was right: the app's code or a
# backup code at the two-factor step. Its own back-off and cap, so that guessing backup codes on
# "Forgot password?" never closes the owner's two-factor log-in.
SECOND_FACTOR = "second factor"
# The two-factor step of a recovery (after a right first backup code): apart from the owner's
# password + app log-in, so that guesses after a found or stolen code never close it.
RECOVERY_SECOND_FACTOR = "recovery second factor"

# Each kind's own count of failures (its cap) and the column holding when it may try next: each
# way in waits and closes on its own failures only.
KIND_COLUMNS = {
    PASSWORD: ("password_failures", "next_password_attempt_at"),
    CODE: ("code_failures", "next_attempt_at"),
    SECOND_FACTOR: ("second_factor_failures", "next_second_factor_attempt_at"),
    RECOVERY_SECOND_FACTOR: ("recovery_failures", "next_recovery_attempt_at"),
}


@dataclass(frozen=True)
class Limits:
    free_failures: int = 5
    max_delay_seconds: int = 15 * 60
    max_consecutive_failures: int = 100

    def delay_after(self, failures: int) -> int:
        """Seconds to wait after `failures` consecutive failures: 0, then 1, 2, 4 ... capped."""
        if failures < self.free_failures:
            return 0
        return min(2 ** (failures - self.free_failures), self.max_delay_seconds)


@dataclass(frozen=True)
class Throttled:
    retry_after_seconds: int
    locked: bool
    kind: str = CODE

    @property
    def message(self) -> str:
        if self.locked and self.kind == PASSWORD:
            return (
                "Too many failed attempts with the password from browsers this account has not "
                "signed in with. Use one you have signed in with before, or press “Forgot "
                "password?” and use a backup code."
            )
        if self.locked and self.kind == SECOND_FACTOR:
            return (
                "Too many wrong codes after the password. This step stays closed until the "
                "site's administrator reopens the account."
            )
        if self.locked and self.kind == RECOVERY_SECOND_FACTOR:
            return (
                "Too many wrong codes after a backup code. Log in with your password instead, "
                "or ask the site's administrator to reopen the account."
            )
        if self.locked:
            return (
                "Too many wrong codes from browsers this account has not signed in with. Use one "
                "you have signed in with before, or ask the site's administrator to reopen the "
                "account."
            )
        minutes, seconds = divmod(self.retry_after_seconds, 60)
        wait = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        return f"Too many failed attempts. Try again in {wait}."


def limits_from_config(config: dict) -> Limits:
    return Limits(
        free_failures=int(config["FAILURES_BEFORE_BACKOFF"]),
        max_delay_seconds=int(config["BACKOFF_CAP_SECONDS"]),
        max_consecutive_failures=int(config["MAX_CONSECUTIVE_FAILURES"]),
    )


def account_key(user_id: int) -> str:
    return f"user:{user_id}"


def unknown_name_key(identifier: str) -> str:
    """Names that match no account still get a counter, so throttling does not reveal them."""
    digest = hashlib.sha256(identifier.strip().casefold().encode("utf-8")).hexdigest()
    return f"name:{digest[:40]}"


# A counter of a name that matches no account is forgotten this long after its last wait ended.
UNKNOWN_NAME_RETENTION = timedelta(days=1)


def prune_unknown_name_counters(db_session: Session, limits: Limits) -> int:
    """Delete counters of names that match no account once their back-off is a day over.

    Guessing against names that do not exist would otherwise add a row per name forever.
    Counters at the cap stay, so a closed name behaves like a closed account. Counters of
    accounts are never pruned: they are one row per account. The caller commits.
    """
    cutoff = now() - UNKNOWN_NAME_RETENTION
    conditions = [AttemptCounter.key.startswith("name:")]
    for count_column, wait_column in KIND_COLUMNS.values():
        wait = getattr(AttemptCounter, wait_column)
        conditions.append(wait.is_(None) | (wait < cutoff))
        conditions.append(getattr(AttemptCounter, count_column) < limits.max_consecutive_failures)
    return rows_changed(db_session.execute(delete(AttemptCounter).where(*conditions)))


def reserve_attempt(db_session: Session, key: str, kind: str, limits: Limits) -> Throttled | None:
    """Count one attempt of `kind` in advance; None means go ahead and check the secret.

    Each kind waits on its own delay and closes at `max_consecutive_failures` of its own, so
    password guesses never delay code entry, code guesses never delay the password, and the
    two-factor step of a recovery never closes the owner's password + app log-in. `key` says
    whose counter: a trusted device's own, every other client's of the account, or an unknown
    name's (security/guard.py). `failures`, what the owner is told of at the next success, is
    not touched here: only an answered wrong secret counts there (`count_answered_failure`).
    """
    count_column, wait_column = KIND_COLUMNS[kind]
    for _ in range(20):
        row = db_session.execute(
            select(
                getattr(AttemptCounter, count_column).label("own_failures"),
                getattr(AttemptCounter, wait_column).label("next_at"),
                AttemptCounter.version,
            ).where(AttemptCounter.key == key)
        ).first()
        if row is None:
            try:
                db_session.add(AttemptCounter(key=key))
                db_session.commit()
            except IntegrityError:
                db_session.rollback()
            continue
        current = now()
        own_failures, next_at = row.own_failures, row.next_at
        if own_failures >= limits.max_consecutive_failures:
            db_session.rollback()
            return Throttled(retry_after_seconds=0, locked=True, kind=kind)
        if next_at is not None and current < next_at:
            db_session.rollback()
            wait = ceil((next_at - current).total_seconds())
            return Throttled(retry_after_seconds=max(wait, 1), locked=False, kind=kind)
        values = {
            "version": row.version + 1,
            count_column: own_failures + 1,
            wait_column: current + timedelta(seconds=limits.delay_after(own_failures + 1)),
        }
        changed = rows_changed(
            db_session.execute(
                update(AttemptCounter)
                .where(AttemptCounter.key == key, AttemptCounter.version == row.version)
                .values(**values)
            )
        )
        db_session.commit()
        if changed == 1:
            return None
    return Throttled(retry_after_seconds=1, locked=False, kind=kind)


def closed_for_new_browsers(db_session: Session, key: str, limits: Limits) -> bool:
    """Some way in of this counter is at the cap."""
    row = db_session.scalar(select(AttemptCounter).where(AttemptCounter.key == key))
    if row is None:
        return False
    cap = limits.max_consecutive_failures
    return any(getattr(row, count) >= cap for count, _ in KIND_COLUMNS.values())


def failures_of(db_session: Session, key: str, kind: str) -> int:
    """The counter's consecutive failures of `kind` (0 without a row)."""
    count_column, _ = KIND_COLUMNS[kind]
    value = db_session.scalar(
        select(getattr(AttemptCounter, count_column)).where(AttemptCounter.key == key)
    )
    return int(value or 0)


def clear_password_failures(db_session: Session, key: str) -> None:
    """A right password that still needs a second factor: the password's own delay and cap
    start again, the second factor's do not. Does not commit."""
    db_session.execute(
        update(AttemptCounter)
        .where(AttemptCounter.key == key)
        .values(
            password_failures=0,
            next_password_attempt_at=None,
            version=AttemptCounter.version + 1,
        )
    )


def count_answered_failure(db_session: Session, key: str) -> None:
    """A check answered with a wrong secret: one more failure to tell the owner of at the next
    success. Does not commit: the caller commits it with the failure's event."""
    db_session.execute(
        update(AttemptCounter)
        .where(AttemptCounter.key == key)
        .values(
            failures=AttemptCounter.failures + 1,
            failures_since=func.coalesce(AttemptCounter.failures_since, now()),
        )
    )


@dataclass(frozen=True)
class Failures:
    """The answered failures a success clears: how many, and when the first of them was."""

    count: int = 0
    since: datetime | None = None

    def plus(self, other: Failures) -> Failures:
        """Both counters' failures: the sum, since the earlier first one."""
        starts = [when for when in (self.since, other.since) if when is not None]
        return Failures(self.count + other.count, min(starts) if starts else None)


def clear_failures(db_session: Session, key: str) -> int:
    """A success: reset the counter. Returns how many answered failures came before it (a
    reservation never answered is not one). Does not commit: the caller commits it with the
    log-in."""
    return clear_failures_since(db_session, key).count


def take_reported_failures(db_session: Session, key: str) -> Failures:
    """The answered failures of `key` to tell the owner of, counted from zero again; the kinds'
    own counts, waits and caps stay as they are. Does not commit."""
    row = db_session.execute(
        select(AttemptCounter.failures, AttemptCounter.failures_since).where(
            AttemptCounter.key == key
        )
    ).first()
    if row is None or not row.failures:
        return Failures()
    db_session.execute(
        update(AttemptCounter)
        .where(AttemptCounter.key == key)
        .values(failures=0, failures_since=None)
    )
    return Failures(count=row.failures, since=row.failures_since)


def clear_failures_since(db_session: Session, key: str) -> Failures:
    """`clear_failures`, returning when the first of the cleared failures was too."""
    row = db_session.execute(
        select(AttemptCounter.failures, AttemptCounter.failures_since).where(
            AttemptCounter.key == key
        )
    ).first()
    values = {"failures": 0, "failures_since": None, "version": AttemptCounter.version + 1}
    for count_column, wait_column in KIND_COLUMNS.values():
        values |= {count_column: 0, wait_column: None}
    db_session.execute(update(AttemptCounter).where(AttemptCounter.key == key).values(values))
    if row is None:
        return Failures()
    return Failures(count=row.failures or 0, since=row.failures_since)
