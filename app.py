"""The application factory: gunicorn "app:create_app()" (`make serve`), `make run` in development,
and the `flask --app app` commands (init-db, demo, create-user, unlock-account, prune)."""

from __future__ import annotations

import contextlib
import os
from collections import ChainMap
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

import click
from flask import (
    Flask,
    abort,
    current_app,
    flash,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from jinja2 import Template
from jinja2.runtime import new_context
from markupsafe import Markup
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_host

from blueprints.browser import PENDING_KEY, SessionCookie, csrf_token, forget_pending
from blueprints.context import app_context_of, install, request_context
from blueprints.demo.routes import end_a_sandbox_past_its_deadline
from config import BASE_DIR, CONFIGS, INSTANCE_DIR, development_secret_key, host_list
from extensions import csrf, db, limiter, login_manager, mail, migrate, watch_connections
from logs import configure_logging
from security.attempts import limits_from_config
from security.code_notice import notice_for
from security.context import Context
from security.events import RATE_LIMITED, log_event
from security.keys import keyring_from_config
from security.sessions import Timeouts, load_session
from security.signing_in import abandon_pending_login

MIGRATIONS_DIR = BASE_DIR / "migrations"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# No page uses these, so no page (or anything injected into one) can ask for them.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=()"
STRICT_TRANSPORT_SECURITY = "max-age=31536000; includeSubDomains"


class Sparekey(Flask):
    """Flask, asking once per function whether it is a coroutine function. Flask asks on every
    call of every hook, context processor and view (a score of times per page), and the answer
    never changes: every one here is a plain function."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._synchronous: dict = {}

    def ensure_sync(self, func):
        try:
            return self._synchronous[func]
        except KeyError:
            made = self._synchronous[func] = super().ensure_sync(func)
            return made


class PageTemplate(Template):
    """Jinja's template, its context made with one dict copy of the globals. Jinja copies a
    ChainMap of the template's and the environment's globals key by key in Python on every
    render (60-odd globals here); merging its two dicts gives the same dict, read as it stands
    now, so a global added later is still seen."""

    def new_context(self, vars=None, shared=False, locals=None):
        found = self.globals
        if shared or not isinstance(found, ChainMap):
            return super().new_context(vars, shared, locals)
        merged: dict = {}
        for layer in reversed(found.maps):
            merged.update(layer)
        if vars:
            merged.update(vars)
        return new_context(self.environment, self.name, self.blocks, merged, True, found, locals)


def create_app(config: dict | None = None) -> Flask:
    refuse_flask_run()
    app = Sparekey(__name__, instance_path=str(INSTANCE_DIR))
    configure(app, config or {})
    app.session_interface = SessionCookie()
    app.jinja_env.template_class = PageTemplate
    register_extensions(app)
    register_blueprints(app)
    register_request_hooks(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_helpers(app)
    install_macros(app)
    return app


def refuse_flask_run() -> None:
    """`flask run` wraps the app in Werkzeug's debugger when FLASK_DEBUG is set or --debug or
    --debugger is given, and that debugger's console runs code. The app cannot unwrap itself,
    so it refuses to be served that way: `make run` is the development server."""
    context = click.get_current_context(silent=True)
    if context is not None and context.info_name == "run":
        raise click.UsageError(
            "Sparekey is not served by `flask run`: use `make run` (development) or "
            "`make serve` (gunicorn)."
        )


def configure(app: Flask, overrides: dict) -> None:
    env_name = overrides.get("SPAREKEY_ENV") or os.environ.get("SPAREKEY_ENV", "development")
    if env_name not in CONFIGS:
        raise RuntimeError(f"SPAREKEY_ENV must be one of {', '.join(CONFIGS)}, not {env_name!r}")
    config_class = CONFIGS[env_name]
    app.config.from_object(config_class)
    app.config.update(config_class.from_environment())
    app.config.update(overrides)
    app.config["SPAREKEY_ENV"] = env_name
    if not app.config.get("SECRET_KEY"):
        if env_name == "production":
            raise RuntimeError("SECRET_KEY must be set in production (see .env.example).")
        app.config["SECRET_KEY"] = development_secret_key()
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {})
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        INSTANCE_DIR.mkdir(exist_ok=True)
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        options.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    app.config["TRUSTED_HOSTS"] = host_list(app.config.get("TRUSTED_HOSTS")) or host_list(
        app.config.get("SERVER_NAME")
    )
    if env_name == "production" and not (app.config.get("SITE_URL") or app.config["TRUSTED_HOSTS"]):
        # Mailed links (unlock, confirm, undo, secure) would otherwise name whatever Host a
        # request gave: someone could have a link to a site of their choosing mailed to an owner.
        raise RuntimeError(
            "Set SITE_URL (the address mailed links use) or TRUSTED_HOSTS in production "
            "(see .env.example)."
        )
    if app.config["TRUSTED_HOSTS"]:
        app.wsgi_app = RefuseUntrustedHosts(app.wsgi_app, app.config["TRUSTED_HOSTS"])
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    refuse_a_host_cookie_browsers_would_drop(app)
    install(
        app,
        Context(
            db=db.session,
            keys=keyring_from_config(app.config),
            limits=limits_from_config(app.config),
            timeouts=Timeouts(
                idle_seconds=int(app.config["SESSION_IDLE_TIMEOUT_SECONDS"]),
                absolute_seconds=int(app.config["SESSION_ABSOLUTE_TIMEOUT_SECONDS"]),
            ),
            pending_login_seconds=int(app.config["PENDING_LOGIN_SECONDS"]),
        ),
    )
    if app.config.get("MAIL_SERVER") and "MAIL_BACKEND" not in overrides:
        app.config["MAIL_BACKEND"] = "smtp"
    # The signed cookie lives no longer than the server-side session behind it.
    app.config["PERMANENT_SESSION_LIFETIME"] = app.config["SESSION_ABSOLUTE_TIMEOUT_SECONDS"]
    # JSON log lines on stderr and a request id on each (logs.py, docs/operations.md "Logs").
    configure_logging(app)


class RefuseUntrustedHosts:
    """A request for a host not in TRUSTED_HOSTS gets a plain 400 before the app sees it.

    Flask checks TRUSTED_HOSTS as well, but a request it refuses has no URL adapter, so the error
    page (which builds its links) would fail and the answer would be a 500."""

    def __init__(self, wsgi_app, trusted_hosts: list[str]) -> None:
        self.wsgi_app = wsgi_app
        self.trusted_hosts = trusted_hosts

    def __call__(self, environ, start_response):
        try:
            get_host(environ, self.trusted_hosts)
        except SecurityError:
            refusal = Response(
                "Bad request: this site does not answer for that host.\n",
                status=400,
                mimetype="text/plain",
                headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
            )
            return refusal(environ, start_response)
        return self.wsgi_app(environ, start_response)


def refuse_a_host_cookie_browsers_would_drop(app: Flask) -> None:
    """A "__Host-" cookie is kept by browsers only when it is Secure, for Path=/ and without a
    Domain; with anything else nobody could log in, so the app does not start."""
    cookies = app.session_interface
    if not app.config["SESSION_COOKIE_NAME"].startswith("__Host-"):
        return
    if (
        not cookies.get_cookie_secure(app)
        or cookies.get_cookie_domain(app)
        or cookies.get_cookie_path(app) != "/"
    ):
        raise RuntimeError(
            f"The session cookie {app.config['SESSION_COOKIE_NAME']} needs "
            "SESSION_COOKIE_SECURE on, no SESSION_COOKIE_DOMAIN and SESSION_COOKIE_PATH=/."
        )


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """WAL and a busy timeout so concurrent requests wait instead of failing as "locked"."""
    module = type(dbapi_connection).__module__
    if "sqlite" not in module:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    with app.app_context():
        for engine in db.engines.values():
            watch_connections(engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf.init_app(app)
    use_csrf_token_once_a_minute(app)
    limiter.init_app(app)
    mail.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to see that page."
    login_manager.login_message_category = "info"
    # The cookie names a server-side session row, and that row is the control: deleting it logs
    # the browser out, and every sensitive step asks for the password again (security/confirm.py).
    # Flask-Login's own protection would add a SHA-512 of address and browser to every cookie and
    # recompute it on every request, for a "fresh" flag nothing reads.
    login_manager.session_protection = None

    login_manager.user_loader(load_user)


def load_user(token: str):
    """Flask-Login's loader: the cookie's token names a live server-side session row. It reads
    the app handling this request, never one captured when an app was made."""
    row = load_session(db.session, token, app_context_of(current_app).timeouts, _reads_ahead())
    if row is None:
        return None
    user = row.user
    user.current_session = row
    user.session_token = token
    return user


def _reads_ahead() -> tuple:
    """What this request's view reads first thing, for the session lookup to send beside it
    (`security/read_ahead.py`): a GET or HEAD only."""
    if not has_request_context() or request.method not in ("GET", "HEAD"):
        return ()
    view = current_app.view_functions.get(request.endpoint)  # type: ignore[arg-type]
    return getattr(view, "reads_ahead", ())


def register_blueprints(app: Flask) -> None:
    from blueprints.auth import bp as auth_bp
    from blueprints.demo import bp as demo_bp
    from blueprints.health import bp as health_bp
    from blueprints.profile import bp as profile_bp
    from blueprints.settings import bp as settings_bp
    from blueprints.tour import bp as tour_bp

    if app.config["SPAREKEY_ENV"] == "development":
        from blueprints.mailbox import bp as mailbox_bp

        app.register_blueprint(mailbox_bp)

    app.register_blueprint(auth_bp)
    app.register_blueprint(demo_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(tour_bp)
    app.register_blueprint(profile_bp)
    register_health_and_metrics(app)


# Answered whatever the rate-limit storage does: a limiter waiting on Redis must not hold them up.
UNLIMITED_ENDPOINTS = {"health.healthz", "health.readyz", "metrics.metrics"}


def register_health_and_metrics(app: Flask) -> None:
    """/readyz's checks, /metrics and the counting and timing of every request, and the
    rate-limit storage: refused at start-up when it does not answer (unless
    RATELIMIT_FALLBACK_OK), watched while the app runs."""
    from blueprints.health import readiness, storage
    from blueprints.metrics import bp as metrics_bp
    from blueprints.metrics import count_requests

    app.register_blueprint(metrics_bp)
    count_requests(app)
    readiness.install(app)
    storage.refuse_unreachable_storage(app)
    storage.watch_storage(app)


@limiter.request_filter
def unlimited_endpoint() -> bool:
    return request.endpoint in UNLIMITED_ENDPOINTS


# Files the same for everyone, which a browser may keep; every other answer is no-store.
PUBLIC_FILES = {"static", "tour.screenshot"}
ALLOWED_DURING_PASSWORD_CHANGE = {"auth.new_password", "auth.logout", "static"}
SECOND_FACTOR_ENDPOINTS = {"auth.two_factor", "auth.two_factor_backup_code", "static"}


def register_request_hooks(app: Flask) -> None:
    @app.teardown_appcontext
    def end_the_session_quietly(error):
        """Flask-SQLAlchemy's own teardown removes the session; on a connection the database cut
        mid-request its ROLLBACK raises, and the server would answer with its bare page instead
        of ours. Teardowns run last-registered first: this one closes the session before (objects
        keep what they loaded), and a failure there only means the connection is gone (the pool
        replaces it)."""
        with contextlib.suppress(SQLAlchemyError):
            db.session.close()

    @app.before_request
    def refuse_nul_characters():
        """No field, query or path has a use for NUL; PostgreSQL cannot even store it."""
        values = [request.path, *request.args.values()]
        if request.method == "POST":
            values += request.form.values()
        if any("\x00" in value for value in values):
            abort(400)

    @app.before_request
    def wipe_pending_login_out_of_order():
        """Leaving the two-factor step for any other page ends the half-finished log-in."""
        if PENDING_KEY in session and request.endpoint not in SECOND_FACTOR_ENDPOINTS:
            token = forget_pending()
            if token:
                abandon_pending_login(request_context(), token)

    @app.before_request
    def end_a_demo_sandbox_past_its_deadline():
        if request.routing_exception is not None:
            return None
        return end_a_sandbox_past_its_deadline()

    @app.before_request
    def require_new_password_after_recovery():
        # A path with no page (404, 405, a redirect) needs no account: the error page must not
        # wait on the database to load one.
        if request.routing_exception is not None:
            return None
        user = current_user._get_current_object()
        if not user.is_authenticated:
            return None
        row = user.current_session
        if row.must_change_password and request.endpoint not in ALLOWED_DURING_PASSWORD_CHANGE:
            flash("Create a new password before you go on.", "info")
            return redirect(url_for("auth.new_password"))
        return None

    @app.before_request
    def redirect_within_this_site():
        """Werkzeug's own redirects (the missing trailing slash of /settings, say) name the host
        the request gave. Send the path alone: the browser reads it on the host it asked."""
        moved = request.routing_exception
        if not isinstance(moved, RequestRedirect):
            return None
        parts = urlsplit(moved.new_url)
        if not parts.path.startswith("/") or parts.path.startswith("//"):
            return None
        return redirect(urlunsplit(("", "", parts.path, parts.query, "")), moved.code)

    # Logging (issue 14): every refusal by Flask-Limiter is one `rate_limited` log line.
    @app.after_request
    def log_rate_limit_refusal(response):
        if response.status_code == 429:
            breached = limiter.current_limit
            limit = str(breached.limit) if breached is not None else ""
            endpoint = request.endpoint or ""
            detail = f"{limit} at {endpoint}"
            ip = request.remote_addr or ""
            log_event(RATE_LIMITED, None, "refused", detail, ip, limit=limit, endpoint=endpoint)
        return response

    @app.after_request
    def security_headers(response):
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers["Permissions-Policy"] = PERMISSIONS_POLICY
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        # Production is only ever served over HTTPS (the balancer redirects plain HTTP), so HSTS
        # goes out even when no proxy says so: a missing TRUSTED_PROXIES must not drop it.
        if request.is_secure or app.config["SPAREKEY_ENV"] == "production":
            response.headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY
        if request.endpoint not in PUBLIC_FILES:
            # Pages of a signed-in account never go into a cache, so Back after log-out shows
            # nothing and no code sheet survives on disk.
            response.headers["Cache-Control"] = "no-store"
        return response


ERROR_TEXTS = {
    400: ("Bad request", "The form could not be read. Go back, reload the page and try again."),
    404: ("Page not found", "There is no page at this address."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too much data", "What you sent is too large. Shorten it and try again."),
    429: ("Too many requests", "Too many requests from your network. Wait a minute and try again."),
    # True of every use case (one transaction each), so true of any page that stops on an error.
    500: (
        "Something went wrong",
        "An error on our side stopped this page. What it was doing happened completely or not "
        "at all: reload the page to see which.",
    ),
}


def register_errorhandlers(app: Flask) -> None:
    """Every error page (404, 405, 400 and an expired form, 413, 429, 500 ...) is one standalone
    template, rendered after a rollback: no base layout, no context processor, no `current_user`,
    no database. The database may be what failed; a page that needed it would fail in turn, and
    the WSGI server would answer with its own bare page and lose the request from its log."""
    from flask import g
    from werkzeug.exceptions import HTTPException

    def render_error(error):
        code = error.code if isinstance(error, HTTPException) and error.code else 500
        title, text = ERROR_TEXTS.get(code) or (
            ERROR_TEXTS[500] if code >= 500 else (error.name, OTHER_CLIENT_ERROR)
        )
        if isinstance(error, CSRFError):
            text = (
                "This form expired or did not come from this site. Reload the page and try again."
            )
        # Whatever the request was doing is not kept (a use case commits its own work before it
        # returns); on a dead connection the rollback only discards the transaction.
        with contextlib.suppress(SQLAlchemyError):
            db.session.rollback()
        # Anything rendered from here on is part of an error page (code_notice looks).
        g.error_page = True
        page = app.jinja_env.get_template("errors/error.html")
        response = app.response_class(
            page.render(title=title, text=text, **_error_page_links()),
            status=code,
            mimetype="text/html",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    # HTTPException covers every code, an expired form (CSRFError, a 400) and, through Flask's
    # InternalServerError, any other exception; routing redirects never reach a handler.
    app.register_error_handler(HTTPException, render_error)


OTHER_CLIENT_ERROR = "This request could not be answered. Go back and try again."
ERROR_PAGE_FALLBACK_LINKS = {
    "home": "/",
    "stylesheet": "/static/css/app.css",
    "icon": "/static/img/favicon.svg",
}


def _error_page_links() -> dict[str, str]:
    """The error page's links, or fixed ones when this request cannot build URLs."""
    from werkzeug.routing import BuildError

    try:
        return {
            "home": url_for("profile.home"),
            "stylesheet": url_for("static", filename="css/app.css"),
            "icon": url_for("static", filename="img/favicon.svg"),
        }
    except (RuntimeError, BuildError):
        return dict(ERROR_PAGE_FALLBACK_LINKS)


def use_csrf_token_once_a_minute(app: Flask) -> None:
    """Pages get Flask-WTF's CSRF token from blueprints/browser.py:csrf_token (signed once a
    minute per browser, not on every page). Flask-WTF gives templates its own function twice, as
    a template global and by a context processor of its own run on every render; the global is
    replaced and the processor, which gives nothing else the globals do not, is removed."""
    processors = app.template_context_processors[None]
    flask_wtf_own = [
        processor
        for processor in processors
        if processor.__module__ == "flask_wtf.csrf" and processor.__name__ == "<lambda>"
    ]
    if len(flask_wtf_own) != 1:
        raise RuntimeError("Flask-WTF's context processor was not found: see app.py")
    processors.remove(flask_wtf_own[0])
    app.jinja_env.globals["csrf_token"] = csrf_token


def register_commands(app: Flask) -> None:
    from commands import register

    register(app)


def install_macros(app: Flask) -> None:
    """The macros of templates/macros/ as template globals, made once (last, so they see every
    other global). A page that imported them (`{% from "macros/..." import ... %}`) paid for the
    import on every render: Jinja compares the page's globals with the macro file's each time.
    Like an import without context, a macro sees the globals, not the page's variables. A changed
    macro file is read again when the app starts."""
    from jinja2.runtime import Macro

    env = app.jinja_env
    for name in env.list_templates(filter_func=lambda name: name.startswith("macros/")):
        for key, value in vars(env.get_template(name).module).items():
            if not isinstance(value, Macro):
                continue
            if key in env.globals:
                raise RuntimeError(f"{name} defines {key}, a name already taken in templates")
            env.globals[key] = value


def register_template_helpers(app: Flask) -> None:
    from flask import g

    from security.backup_codes import CODES_PER_SET, LOW_CODES_WARNING, format_code
    from security.devices import describe_device
    from security.ended_sessions import why_session_ended

    @app.template_filter("datetime")
    def format_datetime(value) -> str:
        return value.strftime("%-d %b %Y, %H:%M UTC") if value else ""

    @app.template_filter("time_tag")
    def time_tag(value) -> Markup:
        """A <time> in UTC ("3 Dec 2026, 14:05 UTC"), its instant in `datetime` and `title`;
        static/js/app.js shows it in the browser's time zone and relative ("2 minutes ago"),
        keeping UTC in the title. Without JavaScript the UTC text stays."""
        if not value:
            return Markup("")
        instant = value.strftime("%Y-%m-%dT%H:%M:%SZ")
        text = format_datetime(value)
        return Markup('<time datetime="{0}" title="{1}" data-local-time>{1}</time>').format(
            instant, text
        )

    @app.template_filter("date")
    def format_date(value) -> str:
        return value.strftime("%-d %b %Y") if value else ""

    @app.context_processor
    def code_notice() -> dict:
        """The "A backup code was used" notice, on every session but the one that used it, until
        dismissed there (security/code_notice.py).

        Never on an error page, and never an error itself: when the database fails, the page
        goes without the notice (the next page shows it) after a rollback, so the rest of the
        page does not meet a failed transaction."""
        if g.get("error_page"):
            return {}
        try:
            user = current_user._get_current_object()
            if not user.is_authenticated or not user.code_notice_event_id:
                return {}
            event = notice_for(db.session, user, user.current_session)
        except SQLAlchemyError as error:
            with contextlib.suppress(SQLAlchemyError):
                db.session.rollback()
            app.logger.warning("code notice left out of a page: %s", type(error).__name__)
            return {}
        return {"code_notice": event} if event is not None else {}

    @app.context_processor
    def why_logged_out() -> dict:
        """The "You were logged out because ..." line: the cookie still names a session that a new
        password, a backup code used or a change of factors ended from elsewhere
        (security/ended_sessions.py). Said once: the dead session's token leaves the cookie."""
        if g.get("error_page") or current_user.is_authenticated:
            return {}
        token = session.get("_user_id")
        if not isinstance(token, str):
            return {}
        try:
            reason = why_session_ended(db.session, token)
        except SQLAlchemyError as error:
            with contextlib.suppress(SQLAlchemyError):
                db.session.rollback()
            app.logger.warning("logged-out note left out of a page: %s", type(error).__name__)
            return {}
        session.pop("_user_id", None)
        return {"logged_out_because": reason} if reason is not None else {}

    # Built once per mount point (request.script_root) and argument, in a bounded cache.
    @lru_cache(maxsize=256)
    def _static_url(script_root: str, filename: str) -> str:
        return url_for("static", filename=filename)

    @app.template_global("static_url")
    def static_url(filename: str) -> str:
        """`url_for("static", filename=...)`, built once per file (and mount point): the five on
        every page cost more than the rest of the layout's links."""
        return _static_url(request.script_root, filename)

    @app.template_global("avatar")
    def avatar(user, size: str = "large") -> Markup:
        """The account's picture: its image, or its initial, which the stylesheet draws from
        `data-initial` on one of six colours (so a link holding it is named by its words alone,
        as its visible text). A function rather than a macro of templates/macros/: it is on every
        signed-in page, and a macro call costs several times this."""
        if user.avatar:
            return Markup(
                '<img class="avatar avatar-{0}" src="{1}" alt="" aria-hidden="true">'
            ).format(size, static_url("img/avatars/" + user.avatar))
        initial = (user.display_name or user.username)[:1].upper()
        return Markup(
            '<span class="avatar avatar-{0} avatar-hue-{1}" aria-hidden="true"'
            ' data-initial="{2}"></span>'
        ).format(size, user.id % 6, initial)

    @lru_cache(maxsize=256)
    def _fixed_url(script_root: str, endpoint: str) -> str:
        return url_for(endpoint)

    flask_url_for = app.jinja_env.globals["url_for"]

    @app.template_global("url_for")
    def page_url_for(endpoint: str, **values) -> str:
        """Flask's `url_for`, but a link with nothing to fill in (Home, Settings, Log out ...:
        a dozen on a page) is built once per mount point, as `static_url` is. A link with
        values, a relative endpoint (".page"), or an app with URL defaults goes to Flask."""
        if values or endpoint[:1] == "." or app.url_default_functions or not has_request_context():
            return flask_url_for(endpoint, **values)
        return _fixed_url(request.script_root, endpoint)

    from blueprints.tour.journeys import callout as tour_step

    def _render_bottom_bar(user) -> Markup:
        page = app.jinja_env.get_template("_bottom_bar.html")
        html = page.render(request=request._get_current_object(), current_user=user)
        return Markup(html)  # noqa: S704  # nosec B704: an auto-escaped template's output

    @lru_cache(maxsize=1024)
    def _bottom_bar_for(script_root: str, endpoint: str | None, viewed, account: tuple) -> Markup:
        # Everything the template reads is in the arguments (the request's blueprint is its
        # endpoint's first part); it renders from the request.
        return _render_bottom_bar(current_user._get_current_object())

    @app.template_global("bottom_bar")
    def bottom_bar() -> Markup:
        """The main navigation of a signed-in page (templates/_bottom_bar.html), rendered once
        per mount point, page, account and picture: it shows nothing else, unless the tour
        points at the profile picture in it, when it is rendered afresh. It was a tenth of a
        signed-in page's work."""
        user = current_user._get_current_object()
        if tour_step("profile-tab") is not None:
            return _render_bottom_bar(user)
        viewed = (request.view_args or {}).get("username")
        account = (user.id, user.username, user.display_name, user.avatar)
        return _bottom_bar_for(request.script_root, request.endpoint, viewed, account)

    @lru_cache(maxsize=64)
    def _settings_side(script_root: str, endpoint: str | None) -> Markup:
        side = app.jinja_env.globals["leaf_side"](endpoint)
        return Markup(str(side).strip())  # noqa: S704  # nosec B704: the macro's own output

    @app.template_global("settings_side")
    def settings_side(endpoint: str | None) -> Markup:
        """The sections of Settings beside a single settings page on a desktop (the `leaf_side`
        macro), rendered once per page and mount point: what it shows depends on nothing else
        (no account, no tour step). Empty on every other page."""
        return _settings_side(request.script_root, endpoint)

    app.jinja_env.filters["code"] = format_code
    app.jinja_env.filters["device"] = describe_device
    app.jinja_env.globals["LOW_CODES_WARNING"] = LOW_CODES_WARNING
    app.jinja_env.globals["CODES_PER_SET"] = CODES_PER_SET
