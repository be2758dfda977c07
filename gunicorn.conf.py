"""gunicorn settings for `make serve` and production: `gunicorn -c gunicorn.conf.py`.

Environment variables: HOST, PORT (bind), WEB_CONCURRENCY (worker processes), GUNICORN_THREADS
(threads per worker), GUNICORN_TIMEOUT (seconds), GUNICORN_ACCESSLOG (a path, "-" for stdout,
"off" for none). See docs/operations.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from config import load_env_file

# .env first, so the settings below and the app's configuration both see it.
load_env_file()

MAX_DEFAULT_WORKERS = 12


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def default_workers() -> int:
    """2 × usable CPUs + 1, capped: every worker holds its own database pool."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(2 * cpus + 1, MAX_DEFAULT_WORKERS)


wsgi_app = "app:create_app()"
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{_int('PORT', 8000)}"

workers = _int("WEB_CONCURRENCY", default_workers())
# Threads let a worker keep connections alive (the sync worker closes each one) and serve other
# requests while one waits on the database; bcrypt releases the GIL, so hashing runs in parallel.
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)

# A request that takes longer than this is stuck (the slowest real work, one bcrypt at cost 12,
# takes about 0.25 s): the worker is restarted.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = 30
# Behind a load balancer: keep this above the balancer's idle timeout for upstream connections.
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# The app is created in every worker after the fork, so no database connection is shared.
preload_app = False

# Limits on the request line and headers; bodies are capped by the app (MAX_CONTENT_LENGTH).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# One line per request, without the query string (%(U)s is the path only; %(r)s would carry
# ?next=... and anything else a client put there) and without the Referer.
_accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
accesslog = None if _accesslog == "off" else _accesslog
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")

# Forwarded headers are the app's business (TRUSTED_PROXIES, through werkzeug's ProxyFix), so one
# setting decides which proxies are believed; gunicorn itself believes none of them.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}

# gunicorn's control socket sits at one fixed path per user, so two servers on one machine
# would fight over it; it is off unless a path is given.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# Heartbeat files in memory, not on a possibly slow disk (containers). They hold no data.
if Path("/dev/shm").is_dir():  # noqa: S108
    worker_tmp_dir = "/dev/shm"  # noqa: S108

proc_name = "sparekey"
