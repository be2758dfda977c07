"""Logging: one JSON object per line on stderr, and a request id on every line of a request.

- The app: `configure_logging(app)` (called by app.py:configure) gives every request an id
  (`RequestIds`), puts it on each log record made while the request runs, and, when nothing
  configured logging before (`make run`, the flask commands), writes the root logger's records
  to stderr as JSON. Under gunicorn, gunicorn.conf.py has configured logging already (with
  `gunicorn_logconfig`); under pytest the handlers pytest installs are left alone (caplog).
- gunicorn: `gunicorn_logconfig(...)` is its `logconfig_dict`: the error log and the app's
  records on stderr, the access log (stderr, a file, or off) with one JSON line per request.

Nothing here imports the app, so gunicorn's master process can load it before any worker
exists. docs/operations.md, "Logs", describes the lines.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
# What a trusted proxy's id may look like; anything else is replaced by a new one.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The id of the request this thread is serving, while the app handles it.
_request_id: ContextVar[str | None] = ContextVar("sparekey_request_id", default=None)

# Paths that carry a mailed link's token: the link works until it is used, so it never goes
# into a log line. tests/test_logging.py checks that every route with a <token> is listed here.
TOKEN_PATHS = re.compile(
    r"(/accounts/unlock/|/accounts/secure/|/accounts/email/undo/"
    r"|/settings/security/email/verify/)[^/\s?#\"]+"
)
# A query string after a path, in a message (gunicorn's "Error handling request /x?y").
QUERY_STRING = re.compile(r"(/[^\s?\"]*)\?[^\s\"]*")
LEVEL_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}


def redact(text: str) -> str:
    """`text` without mailed-link tokens in paths and without query strings."""
    return QUERY_STRING.sub(r"\1", TOKEN_PATHS.sub(r"\1[token]", text))


def current_request_id() -> str | None:
    """The id of the request being served in this thread, if any."""
    return _request_id.get()


class RequestIds:
    """WSGI middleware: an id for each request, in the response header `X-Request-ID`.

    The incoming `X-Request-ID` is kept only when a trusted proxy sent it (`trust_incoming`,
    TRUSTED_PROXIES > 0) and it is 1 to 64 characters of [A-Za-z0-9._-]; otherwise the id is a
    new uuid4 in hex. While the app runs, every log record made in this thread carries it.
    """

    ENVIRON_KEY = "sparekey.request_id"

    def __init__(self, wsgi_app: Callable, trust_incoming: bool) -> None:
        self.wsgi_app = wsgi_app
        self.trust_incoming = trust_incoming

    def request_id(self, environ: Mapping[str, Any]) -> str:
        incoming = environ.get("HTTP_X_REQUEST_ID", "") if self.trust_incoming else ""
        if isinstance(incoming, str) and VALID_REQUEST_ID.fullmatch(incoming):
            return incoming
        return uuid.uuid4().hex

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        request_id = self.request_id(environ)
        environ[self.ENVIRON_KEY] = request_id

        def start_with_id(status: str, headers: list, *exc_info: Any):
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, headers, *exc_info)

        token = _request_id.set(request_id)
        try:
            return self.wsgi_app(environ, start_with_id)
        finally:
            _request_id.reset(token)


class _RecordsWithRequestId:
    """A LogRecord factory: the record of a log call made while a request runs gets its id as
    `request_id` (any logger, any handler: pytest's caplog sees it too)."""

    def __init__(self, previous: Callable[..., logging.LogRecord]) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        request_id = _request_id.get()
        if request_id is not None:
            record.request_id = request_id
        return record


class JsonLines(JsonFormatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, pid, message, then the
    record's own fields (a security event's `event`, `outcome`, ...; `request_id`). A record of
    gunicorn's access log becomes the request's method, path, status, bytes, duration_ms,
    address, user_agent and request_id. Messages and paths lose link tokens and query strings;
    JSON escapes line breaks, so no value can start a line of its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(LEVEL_FIELDS, rename_fields=RENAMED)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")

    def add_fields(
        self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_record, record, message_dict)
        if isinstance(log_record.get("message"), str):
            log_record["message"] = redact(log_record["message"])
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            log_record.update(access_fields(record.args))


def access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of one request from gunicorn's access-log atoms (its `SafeAtoms`, which answer
    "-" for what is missing and put a backslash before every double quote)."""

    def atom(name: str) -> Any:
        value = atoms.get(name, "-")
        if isinstance(value, str):
            value = value.replace('\\"', '"')
        return None if value in ("-", "", None) else value

    status = atom("s")
    micros = atom("D")
    path = atom("U")
    return {
        "method": atom("m"),
        # PATH_INFO: the path alone, never the query string.
        "path": redact(path) if isinstance(path, str) else None,
        "status": int(status) if isinstance(status, str) and status.isdigit() else status,
        "bytes": atom("B"),
        "duration_ms": round(micros / 1000, 1) if isinstance(micros, int) else None,
        # REMOTE_ADDR after the app's TRUSTED_PROXIES fix-up: the client, as the app saw it.
        "address": atom("h"),
        "user_agent": atom("a"),
        "request_id": atom("{x-request-id}o"),
    }


class JsonStderrHandler(logging.StreamHandler):
    """A StreamHandler on whatever `sys.stderr` is when a record is written (a test's capture
    may replace it), writing `JsonLines`."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonLines())

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        """StreamHandler sets its stream; this one always writes to the current stderr."""


class DropLimiterBreachLines(logging.Filter):
    """Flask-Limiter's own lines the app writes better: "ratelimit ... exceeded" (the app writes
    a structured `rate_limited` line for each 429: app.py, register_request_hooks) and "Rate
    limit storage unreachable" on every request while Redis is down (the app writes one line a
    minute: blueprints/health/storage.py)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        return not message.startswith(("ratelimit ", "Rate limit storage unreachable"))


def configure_logging(app: Any) -> None:
    """The app's logging (app.py:configure calls this once per app).

    - Every request gets an id (`RequestIds`, outermost around the app), and every record made
      while it runs carries it.
    - The `sparekey` loggers and Flask-Limiter's write INFO and above; pytest's handlers and
      propagation are left as they are.
    - If nothing configured the root logger yet, its records go to stderr as JSON lines, and so
      do Python's warnings. gunicorn configured it already (gunicorn.conf.py); so has pytest.
    """
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RecordsWithRequestId):
        logging.setLogRecordFactory(_RecordsWithRequestId(factory))
    logging.getLogger("sparekey").setLevel(logging.INFO)
    limiter_log = logging.getLogger("flask-limiter")
    limiter_log.setLevel(logging.INFO)
    if not any(isinstance(f, DropLimiterBreachLines) for f in limiter_log.filters):
        limiter_log.addFilter(DropLimiterBreachLines())
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(JsonStderrHandler())
    if any(isinstance(handler, JsonStderrHandler) for handler in root.handlers):
        logging.captureWarnings(True)
    trusted_proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    app.wsgi_app = RequestIds(app.wsgi_app, trust_incoming=trusted_proxies > 0)


def gunicorn_logconfig(accesslog: str | None, loglevel: str = "info") -> dict:
    """gunicorn's `logconfig_dict`: JSON lines for its error log, its access log and every other
    logger (the app's records reach the root logger's handler).

    `accesslog`: "-" for stderr, a file path, or None for no access log.
    """
    stderr = {"class": "logs.JsonStderrHandler"}
    if accesslog is None:
        access: dict = {"class": "logging.NullHandler"}
    elif accesslog == "-":
        access = dict(stderr)
    else:
        access = {"class": "logging.FileHandler", "filename": accesslog, "formatter": "json"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "logs.JsonLines"}},
        "handlers": {"stderr": stderr, "access": access},
        # WARNING at the root: INFO there would turn on SQLAlchemy's statement log.
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {
                "level": loglevel.upper(),
                "handlers": ["stderr"],
                "propagate": False,
            },
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
    }
