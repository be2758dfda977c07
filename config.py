"""Configuration classes; environment variables override the defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import ClassVar

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def host_list(value: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """Host names from "a.example, b.example" (or a list); None when there are none."""
    if not value:
        return None
    names = value.split(",") if isinstance(value, str) else value
    hosts = [name.strip().lower() for name in names if name.strip()]
    return hosts or None


def normalise_database_url(url: str) -> str:
    """Accept the `postgres://` spelling that hosting providers hand out; use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def engine_options(url: str, base: dict) -> dict:
    """Engine options for `url`: `base`, and no `pool_pre_ping` on PostgreSQL either. A ping is
    a round trip on every check-out; instead a connection the server closed (a restart, a load
    balancer's idle cut-off) is seen without one and replaced (extensions.py:watch_connections),
    and the first statement of a request is retried once on a connection that died unseen
    (security/sessions.py:load_session). Either way a reconnect, not a failed request."""
    return dict(base)


def load_env_file() -> None:
    """Read .env from the project's folder into the environment (what is set already wins).

    `make run` and gunicorn call this; the flask commands read .env by themselves."""
    from dotenv import load_dotenv

    load_dotenv(BASE_DIR / ".env", override=False)


def development_secret_key() -> str:
    """A random key kept in instance/ so that restarts keep sessions and the pepper stable."""
    key_file = INSTANCE_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    INSTANCE_DIR.mkdir(exist_ok=True)
    key = secrets.token_urlsafe(48)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


class Config:
    """Settings shared by every environment."""

    # app.debug stays off whatever FLASK_DEBUG says (Flask reads that variable when the app is
    # made), so errors show the plain 500 page everywhere. What this guarantees: gunicorn and
    # `make run` (serve_dev.py, the development server) never serve Werkzeug's debugger. `flask
    # run` could wrap the app in it (FLASK_DEBUG=1, --debug, --debugger), so create_app refuses
    # to be loaded by `flask run` at all (app.py: refuse_flask_run).
    DEBUG = False
    SECRET_KEY: str | None = None
    # Optional pepper for password and backup-code digests; derived from SECRET_KEY if unset.
    PEPPER: str | None = None
    # Optional Fernet key for authenticator-app secrets at rest; derived from SECRET_KEY if unset.
    TOTP_ENCRYPTION_KEY: str | None = None
    # How long the half-logged-in state between password and second factor lives.
    PENDING_LOGIN_SECONDS = 5 * 60
    SQLALCHEMY_DATABASE_URI = "sqlite:///" + str(INSTANCE_DIR / "sparekey.db")
    # Database errors never write bound values (which may be typed by anyone) into the logs.
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"hide_parameters": True}

    PASSWORD_BCRYPT_COST = 12
    BACKUP_CODE_BCRYPT_COST = 10

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    SESSION_IDLE_TIMEOUT_SECONDS = 30 * 60
    SESSION_ABSOLUTE_TIMEOUT_SECONDS = 12 * 60 * 60
    # Flask-Login's remember-me cookie is never set; these keep it safe if it ever were.
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"

    MAX_CONTENT_LENGTH = 64 * 1024
    WTF_CSRF_TIME_LIMIT = 3600
    # Code and recovery pages send no Referer at all (Referrer-Policy: no-referrer), so Flask-WTF's
    # HTTPS Referer check would refuse their own forms. The CSRF token and SameSite=Lax remain.
    WTF_CSRF_SSL_STRICT = False
    # No route answers OPTIONS (no cross-origin use): like TRACE or DELETE, it gets the 405 page.
    PROVIDE_AUTOMATIC_OPTIONS = False

    RATELIMIT_STORAGE_URI = "memory://"
    # When the shared store (Redis) cannot be reached, each process counts on its own until it is
    # back, rather than failing every limited request; per-account counters are in the database.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_HEADERS_ENABLED = False
    RATELIMIT_ENABLED = True
    # Redis must answer within a second (connect and reply), so a Redis that hangs costs a
    # request a second and the fall-back above, never a stuck worker.
    RATELIMIT_STORAGE_OPTIONS: ClassVar[dict] = {"socket_timeout": 1, "socket_connect_timeout": 1}
    # When the configured Redis does not answer at start-up the app refuses to start, unless this
    # is on (RATELIMIT_FALLBACK_OK=1): then it starts with each process counting on its own.
    RATELIMIT_FALLBACK_OK = False
    # /metrics answers only requests with `Authorization: Bearer <METRICS_TOKEN>`; unset, 404.
    METRICS_TOKEN: str | None = None
    TRUSTED_PROXIES = 0
    # The host names this site answers for (a leading dot takes in every subdomain; ports are
    # not compared). A request for any other host gets 400, so no page or redirect is ever built
    # from a Host header someone else chose. Unset: SERVER_NAME if that is set, else any host.
    TRUSTED_HOSTS: list[str] | None = None

    # Per-account failure counter: this many consecutive failures are free, then back-off grows.
    FAILURES_BEFORE_BACKOFF = 5
    BACKOFF_CAP_SECONDS = 15 * 60
    MAX_CONSECUTIVE_FAILURES = 100

    # The address printed on every code sheet, so a sheet found in a drawer says where to use it.
    # Unset, the address the sheet was asked on is printed (set it in production).
    SITE_URL: str | None = None

    # Mail to the owner (Flask-Mailman). Without MAIL_SERVER: files under instance/mail/ in
    # development (listed at /dev/mailbox/), kept in memory in tests, not sent in production.
    MAIL_SERVER: str | None = None
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_DEFAULT_SENDER = "Sparekey <no-reply@localhost>"
    MAIL_BACKEND = "dummy"

    # "Try the demo": a sandbox account per visitor (security/demo.py). It is deleted this long
    # after it was made, or after this long without use, whichever comes first (`flask prune`
    # deletes it; a request after the first deadline ends it at once).
    DEMO_TTL_SECONDS = 2 * 60 * 60
    DEMO_IDLE_SECONDS = 30 * 60
    # At most this many sandboxes at once; then "Try the demo" says to try again later.
    DEMO_MAX_ACCOUNTS = 1000
    # Sandboxes one address may make (Flask-Limiter's notation).
    DEMO_RATE_LIMIT = "5/minute;30/hour"
    # A public demo host: sign-up is replaced by "Try the demo", and every account is a sandbox.
    DEMO_MODE = False

    DEMO_USERNAME = "demo"
    # bandit B105: the public demo login, printed by make run.
    DEMO_PASSWORD = "correct horse battery"  # nosec B105

    @classmethod
    def from_environment(cls) -> dict:
        """Values that the environment sets for this class (read at app creation, not import)."""
        values: dict = {}
        for name in (
            "SECRET_KEY",
            "PEPPER",
            "TOTP_ENCRYPTION_KEY",
            "RATELIMIT_STORAGE_URI",
            "SITE_URL",
            "MAIL_SERVER",
            "MAIL_USERNAME",
            "MAIL_PASSWORD",
            "MAIL_DEFAULT_SENDER",
            "METRICS_TOKEN",
            "DEMO_RATE_LIMIT",
        ):
            if os.environ.get(name):
                values[name] = os.environ[name]
        if os.environ.get("TRUSTED_HOSTS"):
            values["TRUSTED_HOSTS"] = host_list(os.environ["TRUSTED_HOSTS"])
        if os.environ.get("DATABASE_URL"):
            url = normalise_database_url(os.environ["DATABASE_URL"])
            values["SQLALCHEMY_DATABASE_URI"] = url
            values["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(url, cls.SQLALCHEMY_ENGINE_OPTIONS)
        for name in (
            "PASSWORD_BCRYPT_COST",
            "BACKUP_CODE_BCRYPT_COST",
            "TRUSTED_PROXIES",
            "FAILURES_BEFORE_BACKOFF",
            "BACKOFF_CAP_SECONDS",
            "MAX_CONSECUTIVE_FAILURES",
            "MAIL_PORT",
            "DEMO_TTL_SECONDS",
            "DEMO_IDLE_SECONDS",
            "DEMO_MAX_ACCOUNTS",
        ):
            if os.environ.get(name):
                values[name] = _env_int(name, 0)
        for name in ("MAIL_USE_TLS", "MAIL_USE_SSL", "RATELIMIT_FALLBACK_OK", "DEMO_MODE"):
            if os.environ.get(name):
                values[name] = os.environ[name].lower() in ("1", "true", "yes")
        if os.environ.get("SESSION_COOKIE_SECURE"):
            values["SESSION_COOKIE_SECURE"] = os.environ["SESSION_COOKIE_SECURE"].lower() in (
                "1",
                "true",
                "yes",
            )
        return values


class DevelopmentConfig(Config):
    MAIL_BACKEND = "file"
    MAIL_FILE_PATH = str(INSTANCE_DIR / "mail")


class TestConfig(Config):
    TESTING = True
    # bandit B105: tests only.
    SECRET_KEY = "test-secret-key-not-for-production-0123456789"  # nosec B105
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    PASSWORD_BCRYPT_COST = 4
    BACKUP_CODE_BCRYPT_COST = 4
    RATELIMIT_ENABLED = False
    MAIL_BACKEND = "locmem"


class ProductionConfig(Config):
    # "__Host-": a browser keeps this cookie only if it is Secure, has Path=/ and no Domain, so
    # neither a subdomain nor a page over plain HTTP can plant a session of its choosing.
    SESSION_COOKIE_NAME = "__Host-session"
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_DOMAIN = None
    SESSION_COOKIE_PATH = "/"
    REMEMBER_COOKIE_SECURE = True


CONFIGS = {
    "development": DevelopmentConfig,
    "test": TestConfig,
    "production": ProductionConfig,
}
