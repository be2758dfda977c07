"""gunicorn settings for `make serve` and production: `gunicorn -c gunicorn.conf.py`.

Environment variables: HOST, PORT (bind), WEB_CONCURRENCY (worker processes), GUNICORN_THREADS
(threads per worker), GUNICORN_TIMEOUT (seconds), GUNICORN_ACCESSLOG (a path, "-" for stderr,
"off" for none). See docs/operations.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from config import load_env_file
from logs import gunicorn_logconfig

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

# Logs: one JSON object per line (logs.py, docs/operations.md "Logs"). The error log and the
# app's lines go to stderr; the access log to stderr ("-"), a file, or nowhere ("off"), one line
# per request with method, path, status, bytes, duration, address, user agent and request id.
# The path is %(U)s alone: %(r)s would carry ?next=... and anything else a client put there; no
# Referer either. The format below is only the line's message; the fields come from the same
# atoms (the request id from the response header, %({x-request-id}o)s).
_accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
accesslog = None if _accesslog == "off" else _accesslog
access_log_format = "%(m)s %(U)s %(s)s"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
logconfig_dict = gunicorn_logconfig(accesslog, loglevel)

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
if Path("/dev/shm").is_dir():  # noqa: S108  # nosec B108
    worker_tmp_dir = "/dev/shm"  # noqa: S108  # nosec B108

proc_name = "sparekey"


# --- Metrics: prometheus-client's multiprocess mode -----------------------------------------------
# Each worker writes its metrics to files in PROMETHEUS_MULTIPROC_DIR and /metrics adds up every
# worker's files, so a scrape shows the whole server whichever worker answers it. The variable is
# set here, in the master before any worker starts, so every worker has it before it imports
# prometheus-client: the folder given, emptied of the last run's files, or a new temporary one.
_metrics_dirs_made_here: list[str] = []


def on_starting(server) -> None:
    import tempfile

    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for stale in Path(given).glob("*.db"):
            stale.unlink()
    else:
        made = tempfile.mkdtemp(prefix="sparekey-metrics-")
        _metrics_dirs_made_here.append(made)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = made


def child_exit(server, worker) -> None:
    """A worker is gone (exited, killed, replaced): its live gauges no longer count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    import shutil

    for made in _metrics_dirs_made_here:
        shutil.rmtree(made, ignore_errors=True)
