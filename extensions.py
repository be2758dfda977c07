"""Flask extensions, created unbound and initialised in the app factory; and how the app's
PostgreSQL connections are used (`watch_connections`)."""

from __future__ import annotations

import re
import select
from functools import lru_cache

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mailman import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Named constraints, so migrations can alter them by name on every database.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Login(LoginManager):
    """Flask-Login's manager. With its session protection off (app.py says why), it still
    hashed the browser's address and user agent (SHA-512) on every request before reading that
    the protection was off; now it reads the setting first."""

    def _session_protection_failed(self) -> bool:
        mode = current_app.config.get("SESSION_PROTECTION", self.session_protection)
        if mode not in ("basic", "strong"):
            return False
        return super()._session_protection_failed()


db = SQLAlchemy(model_class=Base)
login_manager = Login()
migrate = Migrate()
csrf = CSRFProtect()
mail = Mail()
# Per-address limits count `request.remote_addr` (set from X-Forwarded-For only through the
# TRUSTED_PROXIES fix-up).
limiter = Limiter(key_func=get_remote_address)


# --- PostgreSQL connections: one round trip for a statement that only reads --------------------

# A plain SELECT: no row lock (FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE).
_PLAIN_SELECT = re.compile(r"\s*SELECT\b", re.IGNORECASE)
_ROW_LOCK = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|SHARE|KEY\s+SHARE)\b", re.IGNORECASE)


@lru_cache(maxsize=1024)
def reads_only(statement: str) -> bool:
    """Whether `statement` is a plain SELECT (the app's statements are few: cached by text)."""
    return bool(_PLAIN_SELECT.match(statement)) and not _ROW_LOCK.search(statement)


def watch_connections(engine: Engine) -> None:
    """How the app uses a PostgreSQL (psycopg) connection, so that a signed-in page that only
    reads costs one round trip to the database:

    - Statements that only read run outside a transaction (the connection is in autocommit
      when it leaves the pool): no BEGIN before them and no ROLLBACK when it goes back. The
      first statement that writes or locks rows turns the transaction on, before it runs, until
      the unit of work commits or rolls back as before. Under READ COMMITTED each statement sees
      its own snapshot in a transaction too, so reads outside one see exactly what they saw.
    - No ping when a connection leaves the pool. A connection the server closed (a restart,
      an administrator's cut, an idle timeout) has its socket readable: that is seen without a
      round trip and the pool opens a new one instead. One that dies unseen fails its first
      statement; `security/sessions.py:load_session` retries that once.

    SQLite is left as it is (its driver begins a transaction only before a write)."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return
    event.listen(engine, "checkout", _ready_for_reads)
    event.listen(engine, "before_cursor_execute", _transaction_before_a_write)


def _ready_for_reads(dbapi_connection, connection_record, connection_proxy) -> None:
    if closed_by_server(dbapi_connection):
        # The pool discards this connection and hands out a new one.
        raise DisconnectionError("the database closed this pooled connection")
    if not dbapi_connection.autocommit:
        dbapi_connection.autocommit = True


def _transaction_before_a_write(conn, cursor, statement, parameters, context, executemany):
    dbapi_connection = cursor.connection
    if dbapi_connection.autocommit and not reads_only(statement):
        dbapi_connection.autocommit = False


def closed_by_server(dbapi_connection) -> bool:
    """True when an idle connection can no longer be used: closed, or its socket readable (an
    idle connection receives nothing unasked; the server writes only to say it is closing it)."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    try:
        poller = select.poll()
        poller.register(dbapi_connection.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except Exception:
        # No socket to ask about (psycopg raises its own error for a closed one).
        return True
