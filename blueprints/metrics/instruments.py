"""The metrics Sparekey exports, and what feeds them.

Under gunicorn every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR (set by
gunicorn.conf.py before any worker imports this), and a scrape adds up the files of every worker,
so whichever worker answers /metrics shows the whole server. Without that variable (tests,
`make run`) the values live in this process: prometheus-client's default registry.

Security events are counted from the "sparekey.security" log records (a handler of its own reads
the attributes log_event gives them, so the domain knows nothing of metrics); the waiting code
sheets are counted in the database at scrape time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

import clock
from extensions import db
from models import CodeSheet
from security import events
from security.code_sheets import SHEET_LIFETIME

# Read once, like prometheus-client itself decides at import whether values go to files.
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")

# Request paths are not labels (anyone can invent one): the route's endpoint is, "none" for a
# path that matches no route, and only the methods the site answers, the rest as "other".
NO_ENDPOINT = "none"
# No `_created` series next to every counter: Prometheus does not need them, readers skip them.
disable_created_metrics()
METHODS = {"GET", "HEAD", "POST"}

REQUESTS = Counter(
    "sparekey_http_requests",
    "HTTP requests answered, by endpoint, method and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "sparekey_http_request_duration_seconds",
    "Time from the start of a request to its response, by endpoint.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SECURITY_EVENTS = Counter(
    "sparekey_security_events",
    "Security events logged (one per sparekey.security line), by event and outcome.",
    ["event", "outcome"],
)
CODE_ATTEMPTS = Counter(
    "sparekey_code_attempts",
    "Backup codes and authentication-app codes checked, by outcome (success or failure).",
    ["outcome"],
)
COUNTER_REFUSALS = Counter(
    "sparekey_counter_refusals",
    "Attempts refused by a failure counter (a wait or a closed way in), by the counter's kind.",
    ["kind"],
)
STORAGE_FALLBACKS = Counter(
    "sparekey_ratelimit_storage_fallbacks",
    "Times a process found the rate-limit storage (Redis) unreachable and began counting alone.",
)
FALLBACK_PROCESSES = Gauge(
    "sparekey_ratelimit_fallback_processes",
    "Processes counting rate limits on their own because Redis cannot be reached.",
    multiprocess_mode="livesum",
)
MAILS = Counter(
    "sparekey_mails",
    "Mails to owners handed to the mail server, by outcome (sent or failed).",
    ["outcome"],
)
DEMO_SANDBOXES = Counter(
    "sparekey_demo_sandboxes",
    'Presses of "Try the demo", by outcome (made, or refused because the demo is full).',
    ["outcome"],
)
for _outcome in ("success", "failure"):
    CODE_ATTEMPTS.labels(outcome=_outcome)
for _outcome in ("made", "full"):
    DEMO_SANDBOXES.labels(outcome=_outcome)
for _outcome in ("sent", "failed"):
    MAILS.labels(outcome=_outcome)

# Which security events are the check of a code, and how it ended. A right app code at log-in
# has no event of its own (it is a `logged_in`), so only its failures count here.
CODE_SUCCESSES = {
    events.CODE_USED,
    events.CODE_CHECKED,
    events.CODES_IN_USE,
    events.CODES_SAVED,
    events.APP_TURNED_ON,
}
CODE_FAILURES = {
    events.CODE_FAILED,
    events.CODE_CHECK_FAILED,
    events.SHEET_CHECK_FAILED,
    events.APP_CODE_FAILED,
    events.APP_SETUP_FAILED,
}
# Event names are the module's constants; anything else is counted as "other" rather than
# becoming a new label value from whatever a record carries.
KNOWN_EVENTS = {
    value
    for name, value in vars(events).items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
}


# --- requests ------------------------------------------------------------------------------------


def request_started() -> float:
    return time.perf_counter()


def request_finished(endpoint: str | None, method: str, status: int, started: float | None) -> None:
    name = endpoint or NO_ENDPOINT
    REQUESTS.labels(
        endpoint=name, method=method if method in METHODS else "other", status=str(status)
    ).inc()
    if started is not None:
        LATENCY.labels(endpoint=name).observe(time.perf_counter() - started)


# --- security events, from their log lines --------------------------------------------------------


def event_fields(record: logging.LogRecord) -> tuple[str | None, str, str]:
    """(event, outcome, counter kind) of a "sparekey.security" record: the attributes
    security/events.py:log_event gives every record (`counter_kind` only on a refusal)."""
    kind = getattr(record, "event", None)
    outcome = getattr(record, "outcome", None)
    counter_kind = getattr(record, "counter_kind", None)
    return (
        kind if isinstance(kind, str) else None,
        outcome if isinstance(outcome, str) else "",
        counter_kind if isinstance(counter_kind, str) else "",
    )


def count_security_event(kind: str, outcome: str, counter_kind: str = "") -> None:
    outcome = outcome or "unknown"
    SECURITY_EVENTS.labels(
        event=kind if kind in KNOWN_EVENTS else "other", outcome=outcome[:20]
    ).inc()
    if kind in CODE_SUCCESSES:
        CODE_ATTEMPTS.labels(outcome="success").inc()
    elif kind in CODE_FAILURES:
        CODE_ATTEMPTS.labels(outcome="failure").inc()
    elif kind == events.THROTTLED:
        COUNTER_REFUSALS.labels(kind=counter_kind[:30] or "unknown").inc()


class SecurityEventCounter(logging.Handler):
    """Counts every "sparekey.security" record; never raises into the code that logged."""

    def emit(self, record: logging.LogRecord) -> None:
        # A metric must never fail the request that logged, nor add a line of its own.
        with contextlib.suppress(Exception):
            kind, outcome, counter_kind = event_fields(record)
            if kind is not None:
                count_security_event(kind, outcome, counter_kind)


def count_security_events() -> None:
    """Attach the counter to the "sparekey.security" logger, once (a logging set-up that
    replaces the logger's handlers is followed by the next app's call)."""
    logger = logging.getLogger(events.logger.name)
    if not any(isinstance(handler, SecurityEventCounter) for handler in logger.handlers):
        logger.addHandler(SecurityEventCounter(level=logging.INFO))


# --- mail and the rate-limit storage ------------------------------------------------------------


def mail_sent() -> None:
    MAILS.labels(outcome="sent").inc()


def mail_failed() -> None:
    MAILS.labels(outcome="failed").inc()


def demo_sandbox(outcome: str) -> None:
    """A press of "Try the demo": "made" or "full"."""
    DEMO_SANDBOXES.labels(outcome=outcome).inc()


def storage_fell_back() -> None:
    STORAGE_FALLBACKS.inc()
    FALLBACK_PROCESSES.set(1)


def storage_recovered() -> None:
    FALLBACK_PROCESSES.set(0)


# --- the scrape ----------------------------------------------------------------------------------


class WaitingSheets:
    """New code sheets waiting to be saved (at most 30 minutes each), counted at scrape time.

    Many waiting for long may mean owners cannot finish saving (a broken page, a mail or print
    problem); it is read from the database, so every worker and server agrees."""

    def collect(self):
        try:
            if db.engine.dialect.name == "postgresql":
                db.session.execute(text("SET LOCAL statement_timeout = 2000"))
            waiting = db.session.scalar(
                select(func.count())
                .select_from(CodeSheet)
                .where(CodeSheet.created_at >= clock.now() - SHEET_LIFETIME)
            )
        except SQLAlchemyError:
            # The database is /readyz's business; the other metrics are still worth a scrape.
            return
        finally:
            with contextlib.suppress(SQLAlchemyError):
                db.session.rollback()
        gauge = GaugeMetricFamily(
            "sparekey_code_sheets_waiting",
            "New backup-code sheets shown but not saved yet (still alive).",
        )
        gauge.add_metric([], float(waiting or 0))
        yield gauge


class _Registry:
    """The process's own metrics (default registry), as one collector of a scrape."""

    def collect(self):
        yield from REGISTRY.collect()


def scrape() -> bytes:
    """The text exposition of every worker's metrics plus the database's: call in a request."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS_DIR:
        MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
    else:
        registry.register(_Registry())
    registry.register(WaitingSheets())
    return generate_latest(registry)
