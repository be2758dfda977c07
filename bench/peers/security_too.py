"""A minimal Flask-Security-Too app with one signed-in page, for `make bench` only.

Set up as Flask-Security-Too's quick start for Flask-SQLAlchemy sets it up (its `fsqla_v3`
models, `SQLAlchemyUserDatastore`, `pool_pre_ping` on, the session cookie, `@auth_required()`),
with bcrypt for passwords (as Sparekey; the quick start's argon2 needs another package) and no
e-mail deliverability check. `/page/` answers PEER_PAGE_BYTES bytes (Sparekey's page's size) to
the signed-in account: its e-mail address, then padding.

gunicorn -c gunicorn.conf.py "bench.peers.security_too:create_peer_app()"

Environment: PEER_DATABASE_URL (PostgreSQL), PEER_SECRET_KEY, PEER_PAGE_BYTES.
"""

from __future__ import annotations

import os

from flask import Flask, render_template_string
from flask_security import (
    Security,
    SQLAlchemyUserDatastore,
    auth_required,
    hash_password,
)
from flask_security.models import fsqla_v3 as fsqla
from flask_sqlalchemy import SQLAlchemy

EMAIL = "peer@example.com"
PAGE = (
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Profile</title></head>"
    "<body><main><h1>{{ current_user.email }}</h1><p>{{ padding }}</p></main></body></html>"
)

db = SQLAlchemy()
fsqla.FsModels.set_db_info(db)


class Role(db.Model, fsqla.FsRoleMixin):  # type: ignore[name-defined, misc]
    pass


class User(db.Model, fsqla.FsUserMixin):  # type: ignore[name-defined, misc]
    pass


def create_peer_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ["PEER_SECRET_KEY"],
        SECURITY_PASSWORD_SALT=os.environ["PEER_SECRET_KEY"][:22],
        SECURITY_PASSWORD_HASH="bcrypt",
        SECURITY_EMAIL_VALIDATOR_ARGS={"check_deliverability": False},
        SQLALCHEMY_DATABASE_URI=os.environ["PEER_DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
    )
    db.init_app(app)
    app.security = Security(app, SQLAlchemyUserDatastore(db, User, Role))
    size = int(os.environ.get("PEER_PAGE_BYTES", "2300"))
    # The padding that makes the page `size` bytes for EMAIL (the only account), found once.
    bare = app.jinja_env.from_string(PAGE).render(current_user={"email": EMAIL}, padding="")
    padding = "x" * max(size - len(bare.encode()), 0)

    @app.get("/healthz")
    def healthz():
        """What the bench's server launcher waits for (tools/gunicorn.py)."""
        return "ok"

    @app.get("/page/")
    @auth_required()
    def page():
        return render_template_string(PAGE, padding=padding)

    return app


def prepare(app: Flask, password: str) -> None:
    """Fresh tables and the one account (run before the server starts)."""
    with app.app_context():
        db.drop_all()
        db.create_all()
        app.security.datastore.create_user(email=EMAIL, password=hash_password(password))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
