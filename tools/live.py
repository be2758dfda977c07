"""A real server on a free local port, and a small cookie-keeping HTTP client for attack tests."""

from __future__ import annotations

import copy
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar

from flask import Flask
from werkzeug.serving import make_server

CODE_PAGE = "/accounts/password/reset/backup-code/"
CSRF_PATTERN = re.compile(r'name="(?:[\w-]+-)?csrf_token"[^>]*?value="([^"]+)"')


def csrf_from(html: str) -> str:
    """The first CSRF token of a page, as the form that carries it would send it."""
    match = CSRF_PATTERN.search(html)
    if match is None:
        raise AssertionError("no CSRF token on the page")
    return match.group(1)


@contextmanager
def running(app: Flask, **server_options) -> Iterator[str]:
    """Serve `app` threaded on 127.0.0.1 and yield its base URL once the log-in page answers.

    `server_options` go to werkzeug's `make_server` (a quiet request handler, say).
    """
    server = make_server("127.0.0.1", 0, app, threaded=True, **server_options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        # The socket is listening already, so this connects at once; it waits for the app.
        status = Browser(base).get("/accounts/login/")[0]
        if status != 200:
            raise RuntimeError(f"the test server at {base} answered {status}")
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Keeps its own cookies; returns (status, location, body) and never follows redirects."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        # Sent with every request (an X-Forwarded-For address behind a trusted proxy, say).
        self.headers = headers or {}
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def _open(self, request: urllib.request.Request) -> tuple[int, str, str]:
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, "", response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Location", ""), error.read().decode()

    def get(self, path: str) -> tuple[int, str, str]:
        return self._open(urllib.request.Request(self.base + path, headers=self.headers))

    def post(self, path: str, data: dict) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(data).encode()
        request = urllib.request.Request(
            self.base + path, data=body, method="POST", headers=self.headers
        )
        return self._open(request)

    def token(self, path: str) -> str:
        return csrf_from(self.get(path)[2])

    def log_in(self, identifier: str, password: str) -> int:
        """Post the log-in form; returns the status (302 when signed in)."""
        token = self.token("/accounts/login/")
        data = {"csrf_token": token, "identifier": identifier, "password": password}
        return self.post("/accounts/login/", data)[0]

    def stolen_copy(self) -> Browser:
        """Another client holding a copy of this one's cookies: a stolen session cookie."""
        thief = Browser(self.base)
        for cookie in self.jar:
            thief.jar.set_cookie(copy.copy(cookie))
        return thief

    def cookie_header(self) -> str:
        """The cookies as a Cookie header, for tools that send their own requests."""
        return "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.jar)

    def ready_to_enter_code(self, identifier: str) -> str:
        """Walk "Forgot password?" → "Use a backup code"; return the code form's CSRF token."""
        token = self.token("/accounts/password/reset/")
        self.post(
            "/accounts/password/reset/",
            {"csrf_token": token, "identifier": identifier, "use_backup_code": "1"},
        )
        return self.token("/accounts/password/reset/backup-code/")


def at_once(count: int, action: Callable[[int], object], timeout: float = 120) -> list:
    """Run `action(0)` … `action(count - 1)` in `count` threads released at the same moment;
    returns their results in order (None for a thread still running after `timeout`)."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        results[index] = action(index)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results


def race(browsers: list[Browser], tokens: list[str], codes: list[str]) -> list:
    """Every browser submits its backup code on the code page at the same moment."""
    return at_once(
        len(browsers),
        lambda i: browsers[i].post(CODE_PAGE, {"csrf_token": tokens[i], "code": codes[i]}),
    )
