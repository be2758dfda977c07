"""A stolen session is not a stolen account: the headers every answer carries, the production
session cookie, the hosts the site answers for, and where a redirect may send the browser."""

from __future__ import annotations

import pytest

from app import PERMISSIONS_POLICY
from blueprints.navigation import back_to, local_path, safe_next
from tests.helpers import PASSWORD, Person, make_user

SITE = "sparekey.example"
HSTS = "max-age=31536000; includeSubDomains"


def production(app_factory, **config):
    config.setdefault("SITE_URL", f"https://{SITE}")
    return app_factory("production.db", SPAREKEY_ENV="production", SECRET_KEY="x" * 48, **config)


def cookie_attributes(response, name: str) -> dict[str, str] | None:
    """The attributes of the Set-Cookie header for `name` (lower-case keys), or None."""
    for header in response.headers.getlist("Set-Cookie"):
        first, *rest = header.split(";")
        if first.split("=", 1)[0] != name:
            continue
        attributes = {}
        for part in rest:
            key, _, value = part.strip().partition("=")
            attributes[key.lower()] = value
        return attributes
    return None


# --- headers on every answer ---------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/accounts/login/", "/does/not/exist"])
def test_pages_and_the_404_page_send_the_permissions_and_opener_policies(client, url):
    """Checklist 70."""
    response = client.get(url)
    assert response.status_code == (404 if url == "/does/not/exist" else 200)
    assert response.headers["Permissions-Policy"] == PERMISSIONS_POLICY
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in response.headers["Permissions-Policy"]
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_outside_production_hsts_follows_https(client):
    assert "Strict-Transport-Security" not in client.get("/").headers
    https = client.get("/", base_url="https://localhost")
    assert https.headers["Strict-Transport-Security"] == HSTS


def test_production_sends_hsts_even_over_plain_http(app_factory):
    """Behind a balancer whose X-Forwarded-Proto is not trusted, every request looks like plain
    HTTP; production still sends HSTS, on pages and on the 404 page alike."""
    client = production(app_factory).test_client()
    for url in ("/accounts/login/", "/does/not/exist"):
        response = client.get(url)
        assert response.headers["Strict-Transport-Security"] == HSTS, url
        assert response.headers["Permissions-Policy"] == PERMISSIONS_POLICY


# --- the production session cookie ---------------------------------------------------------------


def test_production_names_the_session_cookie_host_only(app_factory):
    """Checklist 54: `__Host-session`: Secure, Path=/ and no Domain, or a browser would refuse
    it; and it is the cookie that carries the log-in."""
    app = production(app_factory)
    person = Person(app.test_client())
    page = person.client.get("/accounts/login/", base_url="https://localhost")
    cookie = cookie_attributes(page, "__Host-session")
    assert cookie is not None, page.headers.getlist("Set-Cookie")
    assert "secure" in cookie and "httponly" in cookie
    assert cookie["path"] == "/"
    assert "domain" not in cookie
    assert cookie["samesite"] == "Lax"
    assert cookie_attributes(page, "session") is None

    make_user(app, "alice", PASSWORD)
    signed_in = person.login(base_url="https://localhost")
    assert signed_in.status_code == 302
    assert cookie_attributes(signed_in, "__Host-session") is not None
    assert person.client.get("/settings/", base_url="https://localhost").status_code == 200


def test_the_session_cookie_is_plain_session_outside_production(client):
    assert cookie_attributes(client.get("/accounts/login/"), "session") is not None


@pytest.mark.parametrize(
    ("environment", "config"),
    [
        ({"SESSION_COOKIE_SECURE": "0"}, {}),
        ({}, {"SESSION_COOKIE_DOMAIN": SITE}),
        ({}, {"SESSION_COOKIE_PATH": "/settings/"}),
    ],
)
def test_production_refuses_to_start_with_a_host_cookie_browsers_would_drop(
    app_factory, monkeypatch, environment, config
):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match="__Host-session needs SESSION_COOKIE_SECURE"):
        production(app_factory, **config)


# --- trusted hosts -------------------------------------------------------------------------------


def test_trusted_hosts_come_from_the_environment_else_server_name(app_factory, monkeypatch):
    monkeypatch.setenv("TRUSTED_HOSTS", f" Sparekey.Example, www.{SITE} ,")
    assert app_factory("env.db").config["TRUSTED_HOSTS"] == [SITE, f"www.{SITE}"]
    monkeypatch.delenv("TRUSTED_HOSTS")
    assert app_factory("name.db", SERVER_NAME=SITE).config["TRUSTED_HOSTS"] == [SITE]
    assert app_factory("none.db").config["TRUSTED_HOSTS"] is None


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/settings", "/", "/accounts/login/"])
def test_a_request_for_another_host_gets_400_never_a_redirect(app_factory, method, path):
    """`/settings` is Werkzeug's trailing-slash redirect, which would name the Host given."""
    client = app_factory(TRUSTED_HOSTS=[SITE]).test_client()
    for host in ("evil.example", f"{SITE}.evil.example", f"evil.{SITE}", ""):
        response = client.open(path, method=method, headers={"Host": host})
        assert response.status_code == 400, (host, response.status_code)
        assert "Location" not in response.headers
        assert "evil" not in response.get_data(as_text=True)


def test_a_trusted_host_is_served_on_any_port(app_factory):
    client = app_factory(TRUSTED_HOSTS=[SITE]).test_client()
    for base in (f"https://{SITE}", f"http://{SITE}:8443"):
        assert client.get("/", base_url=base).status_code == 200
        moved = client.get("/settings", base_url=base)
        assert moved.status_code == 308 and moved.location == "/settings/"


def test_a_production_app_with_trusted_hosts_refuses_others(app_factory, monkeypatch):
    monkeypatch.setenv("TRUSTED_HOSTS", SITE)
    client = production(app_factory).test_client()
    assert client.get("/settings", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/accounts/login/", base_url=f"https://{SITE}").status_code == 200


def test_without_trusted_hosts_werkzeugs_redirects_name_no_host(client):
    """Development and tests answer any host, but the trailing-slash redirect sends the path
    alone, so a Host header someone chose never ends up in a Location."""
    for path, location in (
        ("/settings", "/settings/"),
        ("/settings?a=1&b=%2F%2Fevil.example", "/settings/?a=1&b=%2F%2Fevil.example"),
        ("/settings//security/", "/settings/security/"),
    ):
        response = client.get(path, headers={"Host": "evil.example"})
        assert response.status_code == 308, path
        assert response.headers["Location"] == location
    # A path that starts with two slashes is merged to one before the redirect: never "//host".
    doubled = client.get("/", environ_overrides={"PATH_INFO": "//evil.example"})
    assert doubled.status_code == 308
    assert doubled.headers["Location"] == "/evil.example/"


# --- local_path, safe_next, back_to ---------------------------------------------------------------

HOSTILE = [
    None,
    "",
    "javascript:/alert(1)",
    "javascript://%0aalert(1)",
    "data:text/html,hi",
    "http://[::1",
    "https://[::1/settings/",
    "//evil.example/x",
    "///evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "http://evil.example/settings/",
    f"https://{SITE}.evil.example/settings/",
    f"https://{SITE}@evil.example/settings/",
    f"https://evil.example@{SITE}/settings/",
    f"ftp://{SITE}/settings/",
    f"http:{SITE}/settings/",
    "http:/settings/",
    "settings/",
    "/" + "a" * 599,
    "/settings/\t/evil.example",
    "/\nevil.example",
    "/\r\nSet-Cookie: x=1",
    "/settings/\x00",
    "/settings/\x7f",
    "/ settings/",
    "/\u202egnp.exe",
]


@pytest.fixture
def on_site(app):
    """A request to this site, as the views that read a Referer or `next` see it."""
    with app.test_request_context("/settings/", base_url=f"https://{SITE}"):
        yield


@pytest.mark.usefixtures("on_site")
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_referers_and_next_values_name_no_page(value):
    """Checklist 43: no hostile value names a page; "go back" falls back to Home."""
    assert local_path(value) is None
    assert safe_next(value) is None
    assert back_to(value, "/") == "/"


@pytest.mark.usefixtures("on_site")
@pytest.mark.parametrize(
    ("value", "page"),
    [
        (f"https://{SITE}/settings/?a=1#frag", "/settings/?a=1"),
        (f"HTTP://{SITE.upper()}/settings/", "/settings/"),
        (f"https://{SITE}/", "/"),
        ("/settings/security/?tab=codes#top", "/settings/security/?tab=codes"),
        ("/alice/", "/alice/"),
    ],
)
def test_a_page_on_this_site_is_rebuilt_as_a_path(value, page):
    assert local_path(value) == page
    assert back_to(value, "/fallback/") == page


@pytest.mark.usefixtures("on_site")
def test_safe_next_takes_a_path_only_and_rebuilds_it():
    assert safe_next("/settings/?a=1#frag") == "/settings/?a=1"
    assert safe_next(f"https://{SITE}/settings/") is None
    assert back_to(f"https://{SITE}/settings/#x", "/") == "/settings/"


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("javascript:/alert(1)", "/"),
        ("http://[::1", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("/settings/?a=1#frag", "/settings/?a=1"),
    ],
)
def test_log_in_follows_next_only_to_a_rebuilt_path_here(app, user, target, location):
    """Checklist 43: over HTTP, the log-in's `next` is parsed and rebuilt, never echoed, and
    never a 500."""
    response = Person(app.test_client()).login(query_string={"next": target})
    assert response.status_code == 302, target
    assert response.location == location
