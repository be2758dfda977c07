"""/metrics: Prometheus text for whoever holds METRICS_TOKEN (a 404 like any missing page for
everyone else), counters that move with what happens, and one view of every gunicorn worker."""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import PASSWORD, Person, give_codes, make_user, wrong_code
from tools import gunicorn as gunicorn_launcher

# bandit B105: a test's own token.
TOKEN = "test-metrics-token-0123456789"  # nosec B105
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}
# An address no route matches (a single segment would be a profile's name).
MISSING = "/no/such/page"


@pytest.fixture
def metered(app_factory):
    """An app that answers /metrics to TOKEN; yields (app, client)."""
    app = app_factory("metrics.db", METRICS_TOKEN=TOKEN)
    return app, app.test_client()


def samples(text: str) -> list[tuple[str, dict, float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def scrape(client) -> list[tuple[str, dict, float]]:
    response = client.get("/metrics", headers=AUTHORIZED)
    assert response.status_code == 200, response.status_code
    return samples(response.get_data(as_text=True))


def value(scraped, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(v for n, found, v in scraped if n == name and labels.items() <= found.items())


def moved(client, name: str, action, **labels: str) -> float:
    """How much `name` (with `labels`) grew while `action` ran."""
    before = value(scrape(client), name, **labels)
    action()
    return value(scrape(client), name, **labels) - before


# --- who may read it ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
    ],
    ids=["none", "wrong", "longer", "shorter", "basic", "no-scheme", "empty"],
)
def test_metrics_is_the_404_of_a_missing_page_without_the_token(metered, headers):
    _, client = metered
    response = client.get("/metrics", headers=headers)
    missing = client.get(MISSING)
    assert response.status_code == 404
    assert response.get_data() == missing.get_data()
    assert "sparekey_" not in response.get_data(as_text=True)


def test_metrics_is_a_404_for_everyone_when_no_token_is_set(app_factory):
    client = app_factory("no-token.db").test_client()
    for headers in ({}, AUTHORIZED, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
        assert client.get("/metrics", headers=headers).status_code == 404


def test_metrics_answers_the_token_with_prometheus_text(metered):
    _, client = metered
    response = client.get("/metrics", headers=AUTHORIZED)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    names = {name for name, _, _ in samples(response.get_data(as_text=True))}
    for expected in (
        "sparekey_code_attempts_total",
        "sparekey_mails_total",
        "sparekey_ratelimit_storage_fallbacks_total",
        "sparekey_ratelimit_fallback_processes",
        "sparekey_code_sheets_waiting",
    ):
        assert expected in names, expected


# --- the counters move ----------------------------------------------------------------------------


def test_requests_are_counted_by_endpoint_and_status_and_timed(metered):
    _, client = metered

    def visit():
        client.get("/accounts/login/")
        client.get("/accounts/login/")
        client.get(MISSING)

    scraped = scrape(client)
    visit()
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(scraped, name, **labels)

    requests = "sparekey_http_requests_total"
    assert grew(requests, endpoint="auth.login", method="GET", status="200") == 2
    assert grew(requests, endpoint="none", status="404") == 1
    assert grew("sparekey_http_request_duration_seconds_count", endpoint="auth.login") == 2
    assert grew("sparekey_http_request_duration_seconds_sum", endpoint="auth.login") > 0
    # The scrape itself is counted under its own endpoint.
    assert grew(requests, endpoint="metrics.metrics", status="200") == 1


def test_a_wrong_code_counts_a_failed_code_attempt_and_a_right_one_a_success(metered):
    app, client = metered
    codes = give_codes(app, make_user(app, "alice", PASSWORD, email="alice@example.com"))
    person = Person(app.test_client())
    person.start_recovery("alice")

    def wrong():
        assert "That code did not work." in person.enter_code(wrong_code(codes, 1)).get_data(
            as_text=True
        )

    assert moved(client, "sparekey_code_attempts_total", wrong, outcome="failure") == 1
    assert moved(client, "sparekey_code_attempts_total", wrong, outcome="success") == 0
    assert (
        moved(
            client,
            "sparekey_security_events_total",
            wrong,
            event="backup_code_failed",
            outcome="failure",
        )
        == 1
    )

    def right():
        assert person.enter_code(codes[0]).status_code == 302

    assert moved(client, "sparekey_code_attempts_total", right, outcome="success") == 1


def test_a_throttled_attempt_counts_a_refusal(app_factory, frozen_clock):
    """One free failure, then a wait: the second wrong password at once is refused."""
    app = app_factory("throttle.db", METRICS_TOKEN=TOKEN, FAILURES_BEFORE_BACKOFF=1)
    client = app.test_client()
    make_user(app, "alice", PASSWORD)
    person = Person(app.test_client())
    assert (
        moved(client, "sparekey_counter_refusals_total", lambda: person.login("alice", "wrong one"))
        == 0
    )

    def refused():
        # A typed name hides the wait behind a wrong password's page (security/guard.py).
        assert person.login("alice", "wrong again").status_code == 200

    assert moved(client, "sparekey_counter_refusals_total", refused, kind="password") == 1
    assert moved(client, "sparekey_security_events_total", refused, event="throttled") == 1


def test_refusals_are_counted_by_the_counter_kind_the_log_record_carries(metered):
    """The logging set-up gives each record its fields as attributes (event, outcome,
    counter_kind); the metric reads those, whatever the message says."""
    _, client = metered
    security = logging.getLogger("sparekey.security")

    def log_refusal():
        security.info(
            "attempt refused",
            extra={"event": "throttled", "outcome": "refused", "counter_kind": "password"},
        )

    assert moved(client, "sparekey_counter_refusals_total", log_refusal, kind="password") == 1

    def log_failure():
        security.info("wrong code", extra={"event": "app_code_failed", "outcome": "failure"})

    assert moved(client, "sparekey_code_attempts_total", log_failure, outcome="failure") == 1


def test_a_mail_counts_as_sent(metered):
    app, client = metered
    make_user(app, "alice", PASSWORD, email="alice@example.com")
    person = Person(app.test_client())
    person.login()
    sent = moved(
        client,
        "sparekey_mails_total",
        lambda: person.submit("/settings/security/email/", {}),
        outcome="sent",
    )
    assert sent == 1


def test_a_mail_the_server_refuses_counts_as_failed(app_factory):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    app = app_factory(
        "mail-fails.db",
        METRICS_TOKEN=TOKEN,
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=closed_port,
        PROPAGATE_EXCEPTIONS=False,
    )
    client = app.test_client()
    make_user(app, "alice", PASSWORD, email="alice@example.com")
    person = Person(app.test_client())
    person.login()
    before = scrape(client)
    person.submit("/settings/security/email/", {})
    after = scrape(client)
    assert (
        value(after, "sparekey_mails_total", outcome="failed")
        - value(before, "sparekey_mails_total", outcome="failed")
        == 1
    )
    assert value(after, "sparekey_mails_total", outcome="sent") == value(
        before, "sparekey_mails_total", outcome="sent"
    )


def test_waiting_code_sheets_are_counted_from_the_database(metered, frozen_clock):
    """A sheet counts from when it is shown until it is saved or its 30 minutes are over."""
    app, client = metered
    make_user(app, "alice", PASSWORD)
    person = Person(app.test_client())
    person.login()
    assert value(scrape(client), "sparekey_code_sheets_waiting") == 0
    codes = person.start_new_codes()
    assert value(scrape(client), "sparekey_code_sheets_waiting") == 1
    assert person.save_codes(codes).status_code == 302
    assert value(scrape(client), "sparekey_code_sheets_waiting") == 0
    person.start_new_codes()
    frozen_clock(minutes=29)
    assert value(scrape(client), "sparekey_code_sheets_waiting") == 1
    frozen_clock(minutes=31)
    assert value(scrape(client), "sparekey_code_sheets_waiting") == 0


# --- several gunicorn workers ------------------------------------------------------------------


def healthz_counts_per_worker(directory: Path) -> dict[str, float]:
    """pid → /healthz requests that worker counted, read from its own metrics file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        pid = path.stem.split("_")[-1]
        metrics = MultiProcessCollector.merge([str(path)], accumulate=False)
        counts[pid] = sum(
            sample.value
            for metric in metrics
            for sample in metric.samples
            if sample.name == "sparekey_http_requests_total"
            and sample.labels.get("endpoint") == "health.healthz"
        )
    return counts


def test_metrics_add_up_every_gunicorn_worker(app, tmp_path):
    """Two workers each count their own requests; /metrics, whichever worker answers, shows
    the sum of both."""
    directory = tmp_path / "prometheus"
    env = gunicorn_launcher.environment(
        {
            "SPAREKEY_ENV": "test",
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "METRICS_TOKEN": TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
        }
    )
    with gunicorn_launcher.gunicorn(tmp_path, env, 2, "app:create_app()") as base:
        give_up = time.monotonic() + 60
        while True:
            for _ in range(10):
                with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
                    assert response.status == 200
            per_worker = healthz_counts_per_worker(directory)
            if len([count for count in per_worker.values() if count > 0]) >= 2:
                break
            assert time.monotonic() < give_up, f"one worker took every request: {per_worker}"
        total = sum(per_worker.values())
        # Several scrapes, so both workers answer some of them.
        for _ in range(6):
            request = urllib.request.Request(base + "/metrics", headers=AUTHORIZED)
            with urllib.request.urlopen(request, timeout=10) as response:
                scraped = samples(response.read().decode())
            assert (
                value(scraped, "sparekey_http_requests_total", endpoint="health.healthz") == total
            )
        # A worker killed outright: gunicorn.conf.py's child_exit drops its live gauges (the
        # processes counting rate limits alone), while its counts stay in the total.
        victim = next(iter(per_worker))
        live_gauge = directory / f"gauge_livesum_{victim}.db"
        assert live_gauge.exists()
        os.kill(int(victim), signal.SIGKILL)
        give_up = time.monotonic() + 30
        while live_gauge.exists():
            assert time.monotonic() < give_up, "the dead worker's live gauge stayed"
            time.sleep(0.1)
        request = urllib.request.Request(base + "/metrics", headers=AUTHORIZED)
        with urllib.request.urlopen(request, timeout=10) as response:
            scraped = samples(response.read().decode())
        assert value(scraped, "sparekey_http_requests_total", endpoint="health.healthz") == total
