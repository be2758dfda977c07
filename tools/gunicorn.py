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


@contextmanager
def gunicorn(workdir: Path, env: dict, workers: int, app_spec: str) -> Iterator[str]:
    """Yield the base URL once /healthz answers 200; terminate the server afterwards."""
    errors = workdir / f"gunicorn-{workers}w.err"
    server_env = {
        **env,
        "WEB_CONCURRENCY": str(workers),
        "HOST": "127.0.0.1",
        "PORT": "0",
        "GUNICORN_ACCESSLOG": str(workdir / f"access-{workers}w.log"),
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app_spec]
    with errors.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, cwd=ROOT, env=server_env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        yield _wait_until_healthy(process, errors)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_healthy(process: subprocess.Popen, errors: Path, deadline: float = 60) -> str:
    give_up = time.monotonic() + deadline
    base = None
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{errors.read_text()}")
        if base is None:
            match = LISTENING.search(errors.read_text())
            base = match.group(1) if match else None
        if base is not None:
            try:
                # An http:// URL built from gunicorn's own log line.
                with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                    if response.status == 200:
                        return base
            except (OSError, http.client.HTTPException):
                # Refused, reset or timed out (a worker still booting on a loaded machine):
                # all OSErrors, URLError included; try again until the deadline.
                pass
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn was not healthy within {deadline} s:\n{errors.read_text()}")


def environment(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RATELIMIT_STORAGE_URI",)}
    env.update(extra)
    return env
