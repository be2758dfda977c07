"""Reads a page makes anyway, sent with the session lookup in its one round trip.

A signed-in request looks its session row up first (`security/sessions.py:load_session`). A page
that reads the account's own rows straight after (the code status of Home, Two-Factor and Backup
Codes) declares that read on its view (`reads_ahead`); the lookup then sends it beside its own
statement, the account named in SQL by the session's row (the cookie's digest): on PostgreSQL
one read goes into the lookup's own statement (`security/sessions.py:_folded_for`), and any
other beside it in one pipeline (one Sync): one round trip. The page's own read takes the rows
(`take`) instead of asking again.

What keeps the rows true: only a GET or HEAD reads ahead (a page that changes nothing before it
reads); the rows are for the account whose live session the lookup found, or dropped; they are
taken once; and anything the request's session flushes, or sends that is not a SELECT, before
they are taken drops them (it may have changed what they say). A read that finds nothing kept
simply runs its own statement.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select

from models import UserSession

_KEPT = "read ahead"


@dataclass(frozen=True, eq=False)
class ReadAhead:
    """A read of one account's rows: `statement(account_id)` builds it for an expression of the
    account's id (a bound parameter for the page's own read; the session's account when read
    ahead)."""

    name: str
    statement: Callable[[ColumnElement], Select]


@dataclass(frozen=True)
class Compiled:
    """A read ahead as the lookup sends it on one database: its SQL, its parameters' order,
    and how a row it returns becomes what the page's own statement would have given."""

    sql: str
    parameter_names: tuple[str, ...] | None  # in order, for a driver with positional ones
    processors: tuple[Callable | None, ...]
    row: type
    # The statement's own values (a LIMIT, say), as the driver takes them.
    fixed: tuple[tuple[str, Any], ...] = ()

    def parameters(self, digest: str):
        values = {**dict(self.fixed), "digest": digest}
        if self.parameter_names is None:
            return values
        return tuple(values[name] for name in self.parameter_names)

    def rows(self, found) -> list:
        return [
            self.row(
                *(
                    processor(value) if processor is not None and value is not None else value
                    for processor, value in zip(self.processors, values, strict=True)
                )
            )
            for values in found
        ]


def result_processor(column, dialect) -> Callable | None:
    """How `dialect` turns a value of `column` from the driver into the Python value the ORM
    gives (None: as it comes)."""
    return column.type.dialect_impl(dialect).result_processor(dialect, None)


@lru_cache(maxsize=32)
def compiled(ahead: ReadAhead, dialect) -> Compiled:
    sessions_account = (
        select(UserSession.user_id).where(UserSession.id == bindparam("digest")).scalar_subquery()
    )
    statement = ahead.statement(sessions_account)
    done = statement.compile(dialect=dialect)
    columns = list(statement.selected_columns)
    processors = tuple(result_processor(column, dialect) for column in columns)
    names = tuple(done.positiontup) if done.positional and done.positiontup else None
    row = namedtuple("Row", [column.key for column in columns])  # type: ignore[misc]
    fixed = tuple(
        (name, bound_value(bind, dialect)) for name, bind in done.binds.items() if name != "digest"
    )
    return Compiled(done.string, names, processors, row, fixed)


def bound_value(bind, dialect):
    """A bound parameter's own value as `dialect`'s driver takes it (its type's processor)."""
    processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
    value = bind.effective_value
    return processor(value) if processor is not None and value is not None else value


def keep(db_session: Session, account_id: int, found: dict[ReadAhead, list]) -> None:
    """Hold what the lookup read ahead for `account_id` until the page takes it."""
    db_session.info[_KEPT] = {ahead: (account_id, rows) for ahead, rows in found.items()}


def take(db_session: Session, ahead: ReadAhead, account_id: int) -> Sequence | None:
    """The rows read ahead for `account_id`, once; None when there are none to use."""
    kept = db_session.info.get(_KEPT)
    if not kept:
        return None
    held = kept.pop(ahead, None)
    if held is None or held[0] != account_id:
        return None
    return held[1]


@event.listens_for(Session, "after_flush")
def _drop_on_a_write(db_session: Session, flush_context) -> None:
    db_session.info.pop(_KEPT, None)


@event.listens_for(Session, "do_orm_execute")
def _drop_before_a_statement_that_writes(state) -> None:
    if not state.is_select:
        state.session.info.pop(_KEPT, None)


def reads_ahead(*aheads: ReadAhead):
    """Declare on a view the reads its GET makes right after the session lookup."""

    def declare(view):
        view.reads_ahead = aheads
        return view

    return declare
