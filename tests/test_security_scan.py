# ruff: noqa: E501 -- pip-audit's output is kept verbatim, long lines and all.
"""The pip-audit verdict of `make security` (tests/security_scan.py), on pip-audit's real output.

The samples were captured from pip-audit 2.10.1: the 404 run against this sandbox's index, the
unreachable runs with HTTPS_PROXY pointing at a closed port (127.0.0.1:9) or an unknown host.
"""

from __future__ import annotations

import pytest

from tools.security_scan import FAILED, NOT_AUDITED, OK, judge_pip_audit

NO_VULNERABILITIES = "No known vulnerabilities found\n"

# The vulnerability service answered 404 for every package (stdout shortened).
NOT_FOUND_STDOUT = """\
Name                    Skip Reason
----------------------- ---------------------------------------------------------------------------------------
alembic                 Dependency not found on PyPI and could not be audited: alembic (1.20.1)
bandit                  Dependency not found on PyPI and could not be audited: bandit (1.9.4)
bcrypt                  Dependency not found on PyPI and could not be audited: bcrypt (5.0.0)
"""

# pip-audit's table and summary for a pin with a published advisory.
VULNERABLE_STDOUT = """\
Name  Version ID                  Fix Versions
----- ------- ------------------- ------------
flask 2.2.4   GHSA-m2qf-hxjv-5gpq 2.2.5,2.3.2
"""
VULNERABLE_STDERR = "Found 1 known vulnerability in 1 package\n"

CONNECTION_REFUSED_STDERR = """\
Traceback (most recent call last):
  File ".venv/lib/python3.11/site-packages/urllib3/connection.py", line 239, in _new_conn
    sock = connection.create_connection(
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/urllib3/util/connection.py", line 85, in create_connection
    raise err
  File ".venv/lib/python3.11/site-packages/urllib3/util/connection.py", line 73, in create_connection
    sock.connect(sa)
ConnectionRefusedError: [Errno 111] Connection refused

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File ".venv/lib/python3.11/site-packages/urllib3/connectionpool.py", line 779, in urlopen
    self._prepare_proxy(conn)
  File ".venv/lib/python3.11/site-packages/urllib3/connectionpool.py", line 1074, in _prepare_proxy
    conn.connect()
  File ".venv/lib/python3.11/site-packages/urllib3/connection.py", line 827, in connect
    self.sock = sock = self._new_conn()
                       ^^^^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/urllib3/connection.py", line 254, in _new_conn
    raise NewConnectionError(
urllib3.exceptions.NewConnectionError: HTTPSConnection(host='127.0.0.1', port=9): Failed to establish a new connection: [Errno 111] Connection refused

The above exception was the direct cause of the following exception:

urllib3.exceptions.ProxyError: ('Unable to connect to proxy', NewConnectionError("HTTPSConnection(host='127.0.0.1', port=9): Failed to establish a new connection: [Errno 111] Connection refused"))

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File ".venv/lib/python3.11/site-packages/requests/adapters.py", line 696, in send
    resp = conn.urlopen(
           ^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/urllib3/connectionpool.py", line 847, in urlopen
    retries = retries.increment(
              ^^^^^^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/urllib3/util/retry.py", line 555, in increment
    raise MaxRetryError(_pool, url, reason) from reason  # type: ignore[arg-type]
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
urllib3.exceptions.MaxRetryError: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: /pypi/alembic/1.20.1/json (Caused by ProxyError('Unable to connect to proxy', NewConnectionError("HTTPSConnection(host='127.0.0.1', port=9): Failed to establish a new connection: [Errno 111] Connection refused")))

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File ".venv/bin/pip-audit", line 6, in <module>
    sys.exit(audit())
             ^^^^^^^
  File ".venv/lib/python3.11/site-packages/pip_audit/_cli.py", line 554, in audit
    for spec, vulns in auditor.audit(source):
  File ".venv/lib/python3.11/site-packages/pip_audit/_audit.py", line 68, in audit
    for dep, vulns in self._service.query_all(specs):
  File ".venv/lib/python3.11/site-packages/pip_audit/_service/interface.py", line 180, in query_all
    yield self.query(spec)
          ^^^^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/pip_audit/_service/pypi.py", line 64, in query
    response: requests.Response = self.session.get(url=url, timeout=self.timeout)
                                  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/requests/sessions.py", line 671, in get
    return self.request("GET", url, params=params, **kwargs)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/requests/sessions.py", line 651, in request
    resp = self.send(prep, **send_kwargs)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/requests/sessions.py", line 784, in send
    r = adapter.send(request, **kwargs)
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/cachecontrol/adapter.py", line 76, in send
    resp = super().send(request, stream, timeout, verify, cert, proxies)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/requests/adapters.py", line 723, in send
    raise ProxyError(e, request=request)
requests.exceptions.ProxyError: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: /pypi/alembic/1.20.1/json (Caused by ProxyError('Unable to connect to proxy', NewConnectionError("HTTPSConnection(host='127.0.0.1', port=9): Failed to establish a new connection: [Errno 111] Connection refused")))
"""

TRACEBACK_HEAD = """\
Traceback (most recent call last):
  File ".venv/bin/pip-audit", line 6, in <module>
    sys.exit(audit())
             ^^^^^^^
  File ".venv/lib/python3.11/site-packages/pip_audit/_cli.py", line 554, in audit
    for spec, vulns in auditor.audit(source):
  File ".venv/lib/python3.11/site-packages/pip_audit/_service/pypi.py", line 64, in query
    response: requests.Response = self.session.get(url=url, timeout=self.timeout)
                                  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
"""
NAME_RESOLUTION_STDERR = TRACEBACK_HEAD + (
    "requests.exceptions.ProxyError: HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded with url: /pypi/alembic/1.20.1/json (Caused by ProxyError('Unable to connect to proxy', NameResolutionError(\"HTTPSConnection(host='nowhere.invalid', port=8080): Failed to resolve 'nowhere.invalid' ([Errno -2] Name or service not known)\")))"
    "\n"
)
# pip-audit turns requests' ConnectTimeout into a bare ConnectionError.
CONNECT_TIMEOUT_STDERR = (
    TRACEBACK_HEAD + "ConnectionError: Could not connect to PyPI's vulnerability feed\n"
)
# A crash that has nothing to do with the network (a proxy answering HTML instead of JSON).
OTHER_CRASH_STDERR = """\
Traceback (most recent call last):
  File ".venv/lib/python3.11/site-packages/requests/models.py", line 976, in json
    return complexjson.loads(self.text, **kwargs)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File ".venv/bin/pip-audit", line 6, in <module>
    sys.exit(audit())
             ^^^^^^^
  File ".venv/lib/python3.11/site-packages/pip_audit/_service/pypi.py", line 87, in query
    response_json = response.json()
                    ^^^^^^^^^^^^^^^
  File ".venv/lib/python3.11/site-packages/requests/models.py", line 980, in json
    raise RequestsJSONDecodeError(e.msg, e.doc, e.pos)
requests.exceptions.JSONDecodeError: Expecting value: line 1 column 1 (char 0)
"""


def test_a_clean_audit_passes():
    verdict = judge_pip_audit(0, "", NO_VULNERABILITIES)
    assert (verdict.status, verdict.passed) == (OK, True)
    assert "no known vulnerabilities" in verdict.summary


def test_a_known_vulnerability_fails():
    verdict = judge_pip_audit(1, VULNERABLE_STDOUT, VULNERABLE_STDERR)
    assert (verdict.status, verdict.passed) == (FAILED, False)
    assert "Found 1 known vulnerability in 1 package" in verdict.summary


def test_a_vulnerability_fails_even_when_other_packages_were_skipped():
    stdout = VULNERABLE_STDOUT + "\n" + NOT_FOUND_STDOUT
    assert not judge_pip_audit(1, stdout, VULNERABLE_STDERR).passed


def test_packages_the_index_does_not_know_pass_with_a_message():
    verdict = judge_pip_audit(0, NOT_FOUND_STDOUT, NO_VULNERABILITIES)
    assert (verdict.status, verdict.passed) == (NOT_AUDITED, True)
    assert verdict.summary.startswith("pip-audit: 3 packages could not be audited")


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (CONNECTION_REFUSED_STDERR, "Connection refused"),
        (NAME_RESOLUTION_STDERR, "Name or service not known"),
        (CONNECT_TIMEOUT_STDERR, "Could not connect to PyPI's vulnerability feed"),
    ],
    ids=["connection refused", "no DNS", "connect timeout"],
)
def test_an_unreachable_index_passes_with_one_clear_line(stderr, reason):
    verdict = judge_pip_audit(1, "", stderr)
    assert (verdict.status, verdict.passed) == (NOT_AUDITED, True)
    assert verdict.summary.startswith("pip-audit: nothing could be audited")
    assert "not reachable" in verdict.summary
    assert reason in verdict.summary
    assert "\n" not in verdict.summary


def test_any_other_crash_fails():
    verdict = judge_pip_audit(1, "", OTHER_CRASH_STDERR)
    assert (verdict.status, verdict.passed) == (FAILED, False)
    assert "JSONDecodeError" in verdict.summary


def test_a_network_word_earlier_in_a_chained_traceback_does_not_excuse_the_crash():
    stderr = CONNECTION_REFUSED_STDERR + (
        "\nDuring handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n"
        '  File ".venv/lib/python3.11/site-packages/pip_audit/_cli.py", line 554\n'
        "KeyError: 'vulnerabilities'\n"
    )
    assert judge_pip_audit(1, "", stderr).status == FAILED


def test_a_failure_without_a_traceback_fails():
    verdict = judge_pip_audit(2, "", "usage: pip-audit [-h] ...\npip-audit: error: bad flag\n")
    assert verdict.status == FAILED
    assert "bad flag" in verdict.summary
