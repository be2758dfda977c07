"""Start gunicorn with the project's gunicorn.conf.py on a free port, and stop it."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")
READY = "sparekey worker has its app, pid"
READY_LINE = re.compile(re.escape(READY) + r" (\d+)")
# gunicorn's notices of a worker that is gone: it exited, timed out, or was killed or reaped.
GONE = re.compile(r"(?:Worker exiting \(pid: |WORKER TIMEOUT \(pid:|Worker \(pid:)(\d+)")


@contextmanager
def gunicorn(workdir: Path, env: dict, workers: int, app_spec: str) -> Iterator[str]:
    """Yield the base URL once every worker has loaded the app and /healthz answers 200;
    terminate the server afterwards."""
    errors = workdir / f"gunicorn-{workers}w.err"
    server_env = {
        **env,
        "WEB_CONCURRENCY": str(workers),
        "HOST": "127.0.0.1",
        "PORT": "0",
        "GUNICORN_ACCESSLOG": str(workdir / f"access-{workers}w.log"),
    }
    # Each worker loads `app_spec` through announced(), which says so in the error log.
    announcing = f"tools.gunicorn:announced({app_spec!r})"
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", announcing]
    with errors.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, cwd=ROOT, env=server_env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        yield _wait_until_ready(process, errors, workers)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def announced(app_spec: str):
    """The app of `app_spec`, loaded the way gunicorn loads it, after which this worker writes
    `READY` and its pid to stderr (gunicorn's error log). A worker's "Booting worker" line comes
    before it has imported anything; this line comes when it is about to take requests."""
    from gunicorn.util import import_app

    app = import_app(app_spec)
    print(f"{READY} {os.getpid()}", file=sys.stderr, flush=True)
    return app


def _wait_until_ready(
    process: subprocess.Popen, errors: Path, workers: int, deadline: float = 120
) -> str:
    """The base URL, once `workers` live workers have their app and /healthz answers 200.

    Until every worker is ready the few that are take all the requests, and a machine busy with
    the others' start-up may answer slowly: no request of a test is sent before that.
    """
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{errors.read_text()}")
        log = errors.read_text()
        listening = LISTENING.search(log)
        ready = set(READY_LINE.findall(log)) - set(GONE.findall(log))
        if listening and len(ready) >= workers and _healthy(listening.group(1)):
            return listening.group(1)
        time.sleep(0.05)
    raise RuntimeError(
        f"gunicorn's {workers} workers were not ready within {deadline} s:\n{errors.read_text()}"
    )


def live_workers(workdir: Path, workers: int) -> set[int]:
    """The pids of the live workers of the server `gunicorn(workdir, ..., workers, ...)` runs,
    as its error log tells them."""
    log = (workdir / f"gunicorn-{workers}w.err").read_text()
    return {int(pid) for pid in set(READY_LINE.findall(log)) - set(GONE.findall(log))}


def _healthy(base: str) -> bool:
    try:
        # An http:// URL built from gunicorn's own log line.
        with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
            return response.status == 200
    except (OSError, http.client.HTTPException):
        # Refused, reset or timed out: all OSErrors, URLError and HTTPError included.
        return False


def environment(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RATELIMIT_STORAGE_URI",)}
    env.update(extra)
    return env
