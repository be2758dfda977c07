"""Server-side session rows: the cookie holds only a random id, so deleting the row logs out."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, delete, func, inspect, literal_column, select, true, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, contains_eager, make_transient_to_detached, scoped_session
from sqlalchemy.orm.instrumentation import manager_of_class

from clock import now
from models import PendingLogin, User, UserSession
from security.read_ahead import ReadAhead, compiled, keep, result_processor
from security.rows import rows_changed

# Writing last_seen_at on every request would cost a write per page; a minute is precise enough.
TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class Timeouts:
    idle_seconds: int
    absolute_seconds: int

    def oldest_live(self, current: datetime) -> tuple[datetime, datetime]:
        """(last seen, created): a session seen before the first or made before the second is
        over. The one rule for a request, the sessions list and the prune."""
        return (
            current - timedelta(seconds=self.idle_seconds),
            current - timedelta(seconds=self.absolute_seconds),
        )


def token_digest(token: str) -> str:
    """Rows are keyed by SHA-256 of the cookie's token: a database dump holds no live session."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    db_session: Session,
    user_id: int,
    ip: str,
    user_agent: str,
    must_change_password: bool = False,
) -> tuple[UserSession, str]:
    """Add a new session row to the use case's transaction; returns it and the 256-bit random
    token for the cookie."""
    current = now()
    token = secrets.token_urlsafe(32)
    row = UserSession(
        id=token_digest(token),
        public_id=secrets.token_hex(8),
        user_id=user_id,
        created_at=current,
        last_seen_at=current,
        ip=ip,
        user_agent=user_agent,
        must_change_password=must_change_password,
    )
    db_session.add(row)
    return row, token


def load_session(
    db_session: Session, token: str, timeouts: Timeouts, ahead: tuple[ReadAhead, ...] = ()
) -> UserSession | None:
    """The live session row for the cookie's `token`, with its account, or None. One statement
    (the account is joined), and beside it in the same round trip the page's reads `ahead`
    (`security/read_ahead.py`), kept for the page when the row is live; its own short
    transaction when it writes: an expired row is deleted, and `last_seen_at` is written at most
    once a minute."""
    if not token or len(token) > 64:
        return None
    row, found = _session_row(db_session, token_digest(token), ahead)
    if row is None:
        return None
    current = now()
    seen_after, created_after = timeouts.oldest_live(current)
    if row.last_seen_at < seen_after or row.created_at < created_after:
        db_session.delete(row)
        db_session.commit()
        return None
    if current - row.last_seen_at >= TOUCH_INTERVAL:
        row.last_seen_at = current
        db_session.commit()
    if found:
        keep(db_session, row.user_id, found)
    return row


def _session_row(
    db_session: Session, digest: str, ahead: tuple[ReadAhead, ...]
) -> tuple[UserSession | None, dict]:
    """The row and its account. A request's first statement: when its pooled connection turns
    out to have died unseen (the database restarted, a cut), nothing was lost with it, so it is
    tried once more, on a new connection (the pool replaced them all on seeing the first)."""
    first = _nothing_begun(db_session)
    try:
        return _row_and_account(db_session, digest, ahead)
    except DBAPIError as error:
        if not (first and error.connection_invalidated):
            raise
        db_session.rollback()
        return _row_and_account(db_session, digest, ahead)


# --- the lookup itself: one statement, sent by the driver ----------------------------------------
#
# Every signed-in request runs it, and through the ORM (statement, result, loading) it cost
# three times the round trip it makes (bench/RESULTS.md section 3). So it is compiled once per
# database, sent by the driver, and its row becomes the two objects the ORM would have loaded:
# persistent in the request's session, nothing marked changed, each column through its type's
# result processor. It goes on a connection of its own from the engine's pool, given back as
# soon as the row is read, when the request's session has begun nothing (always, in a request):
# the ORM's transaction bookkeeping around a connection cost more than the checkout, and a page
# that reads nothing more (Profile, and the pages that read ahead) never needs it. In a session
# that has begun, it goes on that session's connection, inside its transaction.
# What the ORM's execution gives everyone else it still gives: the engine's cursor events fire
# (statement counts, fault injection), a driver error becomes SQLAlchemy's, and a connection
# found dead is invalidated, so the retry above and the pool's recovery work the same.


@dataclass(frozen=True)
class _Lookup:
    sql: str
    positional: bool
    # psycopg: rows in binary form, which it turns into the same Python values for less work.
    options: dict
    session_columns: tuple[tuple[str, Callable | None], ...]
    user_columns: tuple[tuple[str, Callable | None], ...]
    # The one read ahead folded into the statement (`_folded_for`), if any.
    ahead: ReadAhead | None = None

    def parameters(self, digest: str):
        return (digest,) if self.positional else {"digest": digest}


def _columns(model, dialect) -> tuple[list, tuple[tuple[str, Callable | None], ...]]:
    columns, keyed = [], []
    for attribute in inspect(model).column_attrs:
        column = attribute.columns[0]
        columns.append(column)
        keyed.append((attribute.key, result_processor(column, dialect)))
    return columns, tuple(keyed)


@lru_cache(maxsize=4)
def _lookup_for(dialect) -> _Lookup:
    session_columns, session_keys = _columns(UserSession, dialect)
    user_columns, user_keys = _columns(User, dialect)
    statement = (
        select(*session_columns, *user_columns)
        .select_from(UserSession.__table__.join(User.__table__))
        .where(UserSession.__table__.c.id == bindparam("digest"))
    )
    done = statement.compile(dialect=dialect)
    options = {"binary": True} if dialect.driver == "psycopg" else {}
    return _Lookup(done.string, bool(done.positional), options, session_keys, user_keys)


# The lookup's account under a name of its own, apart from any table a read ahead selects from.
_ACCOUNT = User.__table__.alias("session_account")


@lru_cache(maxsize=16)
def _folded_for(dialect, ahead: tuple[ReadAhead, ...]) -> _Lookup | None:
    """On PostgreSQL, the lookup with a page's one read ahead in the same statement: the read
    as a LATERAL subquery of the session's account, joined to the row (LEFT, so a read that
    finds nothing still gives the session), numbered in the read's own order. One statement
    costs the driver and the server less than two in a pipeline (docs/decisions.md).
    None where it does not apply (another database, several reads, a read with parameters of
    its own or DISTINCT): the reads then go beside the lookup."""
    if dialect.name != "postgresql" or len(ahead) != 1:
        return None
    plain = _lookup_for(dialect)
    session_columns, _ = _columns(UserSession, dialect)
    user_columns, _ = _columns(User, dialect)
    sessions = UserSession.__table__
    # The account by its name in SQL: a column object would be correlated by SQLAlchemy only
    # to the nearest query, and a subquery of the read (the sheet's EXISTS) would select from
    # every account (tests/test_request_cost.py checks with another account's sheet).
    own = ahead[0].statement(literal_column(f"{_ACCOUNT.name}.id"))
    if own.compile(dialect=dialect).string.lstrip().upper().startswith("SELECT DISTINCT"):
        return None  # a number on each row would make every row distinct
    # A LATERAL subquery's ORDER BY (kept: it chooses the rows of a LIMIT) does not order the
    # rows of the query around it: the read's own ORDER BY (SQLAlchemy's `_order_by_clauses`;
    # the tests compare the order with the page's own read) numbers its rows, and the lookup is
    # sorted by that number.
    place = func.row_number().over(order_by=list(own._order_by_clauses)).label("place")
    beside = own.add_columns(place).lateral("read_ahead")
    statement = (
        select(*session_columns, *(_ACCOUNT.c[column.name] for column in user_columns), *beside.c)
        .select_from(
            sessions.join(_ACCOUNT, _ACCOUNT.c.id == sessions.c.user_id).outerjoin(beside, true())
        )
        .where(sessions.c.id == bindparam("digest"))
        .order_by(beside.c.place)
    )
    done = statement.compile(dialect=dialect)
    if set(done.params) != {"digest"}:
        return None
    return _Lookup(
        done.string,
        bool(done.positional),
        plain.options,
        plain.session_columns,
        plain.user_columns,
        ahead[0],
    )


def _row_and_account(
    db_session: Session, digest: str, ahead: tuple[ReadAhead, ...]
) -> tuple[UserSession | None, dict]:
    """The row and its account, and the rows of each read `ahead` (when the row was found)."""
    session = db_session() if isinstance(db_session, scoped_session) else db_session
    if session.identity_map:
        # Something was loaded before the lookup (not the case in a request): the ORM's way,
        # which merges with what the session holds; the page then reads for itself.
        return session.execute(_ROW_AND_ACCOUNT, {"digest": digest}).scalar(), {}
    bind = session.get_bind()
    if session.in_transaction() or not isinstance(bind, Engine):
        lookup, found, kept = _sent_on(session.connection(), digest, ahead)
    else:  # the request's first statement
        with bind.connect() as connection:
            lookup, found, kept = _sent_on(connection, digest, ahead)
    if found is None:
        return None, {}
    count, users = len(lookup.session_columns), len(lookup.user_columns)
    user = _persistent(User, lookup.user_columns, found[count : count + users])
    row = _persistent(UserSession, lookup.session_columns, found[:count], user=user)
    session.add(row)  # and its account, through the relationship's cascade
    return row, kept


def _sent_on(
    connection, digest: str, ahead: tuple[ReadAhead, ...]
) -> tuple[_Lookup, Any, dict[ReadAhead, list]]:
    """The lookup (with the read ahead folded in where it can be) and the other reads, sent on
    `connection`: the lookup as sent, its row (None: no such session) and each read's rows."""
    dialect = connection.dialect
    lookup = (_folded_for(dialect, ahead) if ahead else None) or _lookup_for(dialect)
    beside = () if lookup.ahead is not None else ahead
    reads = [compiled(read, dialect) for read in beside]
    sent = _send(
        connection,
        [
            (lookup.sql, lookup.parameters(digest)),
            *((read.sql, read.parameters(digest)) for read in reads),
        ],
        lookup.options,
    )
    if not sent[0]:
        return lookup, None, {}
    pairs = zip(beside, reads, sent[1:], strict=True)
    kept = {read: done.rows(rows) for read, done, rows in pairs}
    if lookup.ahead is not None:
        kept[lookup.ahead] = _rows_folded_in(lookup, lookup.ahead, sent[0], dialect)
    return lookup, sent[0][0], kept


def _rows_folded_in(lookup: _Lookup, ahead: ReadAhead, found: list, dialect) -> list:
    """The rows the read ahead folded into the lookup gave: its columns after the account's,
    in each row whose last column (the row's place in the read's order) is not NULL."""
    done = compiled(ahead, dialect)
    start = len(lookup.session_columns) + len(lookup.user_columns)
    end = start + len(done.processors)
    return done.rows([row[start:end] for row in found if row[-1] is not None])


def _send(connection, statements: list[tuple[str, Any]], options: dict) -> list[list]:
    """Each (sql, parameters) on `connection`'s driver connection, as the engine would: its
    cursor events, and a driver error raised as SQLAlchemy's (the connection invalidated when
    the error says the connection is gone; the parameters left out of its message, as the
    engine is told to). Several go in one pipeline on psycopg: one Sync, one round trip.
    Returns each statement's rows."""
    driver = connection.connection.dbapi_connection
    cursors = [driver.cursor() for _ in statements]
    dispatch = connection.dispatch
    pipelined = len(statements) > 1 and hasattr(driver, "pipeline")
    sql, parameters = statements[0]
    try:
        with driver.pipeline() if pipelined else contextlib.nullcontext():
            for cursor, (sql, parameters) in zip(cursors, statements, strict=True):
                dispatch.before_cursor_execute(connection, cursor, sql, parameters, None, False)
                cursor.execute(sql, parameters, **options)
        found = []
        for cursor, (sql, parameters) in zip(cursors, statements, strict=True):
            found.append(cursor.fetchall())
            dispatch.after_cursor_execute(connection, cursor, sql, parameters, None, False)
        return found
    except connection.dialect.loaded_dbapi.Error as error:
        gone = connection.dialect.is_disconnect(error, driver, cursors[0])
        if gone:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql,
            parameters,
            error,
            connection.dialect.loaded_dbapi.Error,
            hide_parameters=connection.engine.hide_parameters,
            dialect=connection.dialect,
            connection_invalidated=gone,
        ) from error
    finally:
        for cursor in cursors:
            with contextlib.suppress(Exception):
                cursor.close()


def _persistent(model, columns, values, **related):
    """An instance of `model` holding `values` as if the ORM had just loaded it (detached until
    the caller adds it to a session)."""
    instance = model.__new__(model)
    manager_of_class(model).setup_instance(instance)
    state = instance.__dict__
    for (key, processor), value in zip(columns, values, strict=True):
        state[key] = processor(value) if processor is not None and value is not None else value
    state.update(related)
    make_transient_to_detached(instance)
    return instance


# The ORM's form of the same lookup, for a session that already holds objects.
_ROW_AND_ACCOUNT = (
    select(UserSession)
    .join(UserSession.user)
    .options(contains_eager(UserSession.user))
    .where(UserSession.id == bindparam("digest"))
)


def _nothing_begun(db_session: Session) -> bool:
    """No transaction has begun in `db_session` (a scoped session asks the session it holds)."""
    session = db_session() if isinstance(db_session, scoped_session) else db_session
    return not session.in_transaction()


def end_session(db_session: Session, session_id: str) -> None:
    db_session.execute(delete(UserSession).where(UserSession.id == session_id))


def end_other_sessions(db_session: Session, user_id: int, keep_session_id: str | None) -> int:
    """Delete every session of the account except `keep_session_id`; returns how many ended."""
    condition = UserSession.user_id == user_id
    if keep_session_id is not None:
        condition = condition & (UserSession.id != keep_session_id)
    return rows_changed(db_session.execute(delete(UserSession).where(condition)))


def end_session_by_public_id(db_session: Session, user_id: int, public_id: str) -> bool:
    """Log out one of the account's own sessions, named by its public id."""
    result = db_session.execute(
        delete(UserSession).where(
            UserSession.user_id == user_id, UserSession.public_id == public_id
        )
    )
    return rows_changed(result) == 1


def clear_password_change_flag(db_session: Session, session_id: str) -> None:
    db_session.execute(
        update(UserSession).where(UserSession.id == session_id).values(must_change_password=False)
    )


def _live(timeouts: Timeouts):
    """The condition a row must meet to be a live session now, in SQL."""
    seen_after, created_after = timeouts.oldest_live(now())
    return (UserSession.last_seen_at >= seen_after) & (UserSession.created_at >= created_after)


def sessions_of(db_session: Session, user_id: int, timeouts: Timeouts) -> list[UserSession]:
    """The account's live sessions, newest first; rows past a timeout are not shown."""
    return list(
        db_session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user_id, _live(timeouts))
            .order_by(UserSession.last_seen_at.desc())
        )
    )


def start_pending_login(
    db_session: Session, user_id: int, purpose: str, first_code_digest: str | None = None
) -> str:
    """Add a half-finished log-in to the use case's transaction; returns the token for the
    cookie."""
    token = secrets.token_urlsafe(32)
    db_session.add(
        PendingLogin(
            id=token_digest(token),
            user_id=user_id,
            purpose=purpose,
            first_code_digest=first_code_digest,
            created_at=now(),
        )
    )
    return token


def load_pending_login(
    db_session: Session, token: str | None, max_age_seconds: int
) -> PendingLogin | None:
    """The live half-finished log-in for `token`; an expired one is deleted (committed)."""
    if not token or len(token) > 64:
        return None
    row = db_session.get(PendingLogin, token_digest(token))
    if row is None:
        return None
    if now() - row.created_at > timedelta(seconds=max_age_seconds):
        db_session.delete(row)
        db_session.commit()
        return None
    return row


def end_pending_login(db_session: Session, token: str) -> None:
    """Delete the half-finished log-in, in the use case's transaction."""
    db_session.execute(delete(PendingLogin).where(PendingLogin.id == token_digest(token)))


def prune_expired(db_session: Session, timeouts: Timeouts, pending_max_age_seconds: int) -> dict:
    """Delete session rows past either timeout and half-finished log-ins past their age.

    A row is otherwise deleted only when its cookie comes back, so abandoned ones would stay.
    Returns how many of each went; not committed (the `prune` use case commits).
    """
    current = now()
    sessions = rows_changed(db_session.execute(delete(UserSession).where(~_live(timeouts))))
    pending = rows_changed(
        db_session.execute(
            delete(PendingLogin).where(
                PendingLogin.created_at < current - timedelta(seconds=pending_max_age_seconds)
            )
        )
    )
    return {"sessions": sessions, "pending log-ins": pending}
