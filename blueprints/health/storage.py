"""The rate-limit storage (Redis): refused at start-up when it cannot be reached, and watched at
run time, when Flask-Limiter falls back to counting in each process's memory.

Flask-Limiter (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED) marks its storage dead when a limited
request cannot reach it and then counts in memory; on later requests it asks the storage again
(`storage.check()`, a PING) after 1, 2, 4 ... 32 seconds, and goes back to Redis when it answers.
Its `_storage_dead` flag is the only sign of that, so it is read after each request here.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

import click
import redis
from flask import Flask

from blueprints.metrics import instruments
from extensions import limiter

log = logging.getLogger("sparekey.ratelimit")

REDIS_SCHEMES = {"redis", "rediss", "redis+unix"}
PING_TIMEOUT_SECONDS = 1.0
WARNING_INTERVAL_SECONDS = 60.0
EXTENSION = "sparekey.storage_watch"
UNREACHABLE = "rate-limit storage unreachable, counting per process"


def uses_redis(config) -> bool:
    """Rate limits are on and kept in Redis."""
    uri = config.get("RATELIMIT_STORAGE_URI") or ""
    return bool(config.get("RATELIMIT_ENABLED", True)) and urlsplit(uri).scheme in REDIS_SCHEMES


def fallback_ok(config) -> bool:
    value = config.get("RATELIMIT_FALLBACK_OK")
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def redis_answers(uri: str, timeout: float = PING_TIMEOUT_SECONDS) -> bool:
    """One PING on a connection of its own, with `timeout` to connect and to answer."""
    if uri.startswith("redis+unix://"):
        uri = "unix://" + uri[len("redis+unix://") :]
    client = redis.Redis.from_url(uri, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def where(uri: str) -> str:
    """host:port of a storage URL, without its password (for the start-up message)."""
    parts = urlsplit(uri)
    return f"{parts.hostname or parts.path}:{parts.port or 6379}"


def refuse_unreachable_storage(app: Flask) -> None:
    """Refuse to start (RuntimeError) when the configured Redis does not answer, unless
    RATELIMIT_FALLBACK_OK says counting per process until it does is acceptable.

    Only an app that will serve requests is refused: a `flask` command (init-db, prune ...) uses
    no rate limit, so it runs whatever Redis does."""
    if not uses_redis(app.config) or click.get_current_context(silent=True) is not None:
        return
    uri = app.config["RATELIMIT_STORAGE_URI"]
    if redis_answers(uri):
        return
    if fallback_ok(app.config):
        log.warning("%s (RATELIMIT_FALLBACK_OK is set: starting anyway)", UNREACHABLE)
        return
    raise RuntimeError(
        f"The rate-limit storage (RATELIMIT_STORAGE_URI, Redis at {where(uri)}) does not answer. "
        "Start Redis or correct the URL; or set RATELIMIT_FALLBACK_OK=1 to start anyway, with "
        "each process counting the per-address limits on its own until Redis answers."
    )


class StorageWatch:
    """Per app: whether the limiter was counting in memory after the last request, and when
    the warning was last written."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.falling_back = False
        self.warned_at: float | None = None

    def after_request(self) -> None:
        dead = bool(getattr(limiter, "_storage_dead", False))
        with self.lock:
            if dead and not self.falling_back:
                self.falling_back = True
                instruments.storage_fell_back()
            elif not dead and self.falling_back:
                self.falling_back = False
                self.warned_at = None
                instruments.storage_recovered()
                log.info("rate-limit storage reachable again, counting in Redis")
            if dead and (
                self.warned_at is None
                or time.monotonic() - self.warned_at >= WARNING_INTERVAL_SECONDS
            ):
                self.warned_at = time.monotonic()
                log.warning(UNREACHABLE)


def watch_storage(app: Flask) -> None:
    """After each request of an app that keeps its limits in Redis: count a fall-back, and
    warn at most once a minute while it lasts."""
    if not uses_redis(app.config):
        return
    watch = app.extensions[EXTENSION] = StorageWatch()

    @app.after_request
    def notice_a_fallback(response):
        watch.after_request()
        return response
