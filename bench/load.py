"""Load generators: wrk when it is installed, else Python threads on keep-alive connections."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class LoadResult:
    requests_per_second: float
    requests: int
    bad_responses: int
    tool: str


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def measure(base: str, path: str, cookie: str, connections: int, seconds: float) -> LoadResult:
    if wrk_available():
        return _wrk(base, path, cookie, connections, seconds)
    return _python(base, path, cookie, connections, seconds)


def _wrk(base: str, path: str, cookie: str, connections: int, seconds: float) -> LoadResult:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    output = subprocess.run(  # noqa: S603 - fixed program and arguments
        [*command, base + path], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    bad_count = int(bad.group(1)) if bad else 0
    if errors:
        bad_count += sum(int(n) for n in errors.groups())
    return LoadResult(rate, total, bad_count, "wrk")


def _python(base: str, path: str, cookie: str, connections: int, seconds: float) -> LoadResult:
    parts = urlsplit(base)
    headers = {"Cookie": cookie} if cookie else {}
    counts = [0] * connections
    bad = [0] * connections
    stop_at = time.perf_counter() + seconds

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while time.perf_counter() < stop_at:
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                bad[index] += 1
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                continue
            counts[index] += 1
            if response.status != 200:
                bad[index] += 1
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
        connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return LoadResult(sum(counts) / elapsed, sum(counts), sum(bad), "Python threads + http.client")
