"""`flask` commands: init-db, demo, create-user, unlock-account, prune."""

from __future__ import annotations

import click
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask, current_app
from flask_migrate import stamp, upgrade
from sqlalchemy import delete, inspect, select

from extensions import db
from models import (
    AttemptCounter,
    BackupCode,
    BackupCodeSet,
    PendingLogin,
    SecurityEvent,
    User,
    UserSession,
)
from security.accounts import (
    DuplicateAccount,
    create_user,
    find_user,
    normalise_email,
    normalise_phone,
    normalise_username,
    username_problem,
)
from security.attempts import account_key, clear_failures, prune_unknown_name_counters
from security.keys import current_hasher
from security.passwords import hash_password, password_problem
from security.sessions import prune_expired

INITIAL_REVISION = "e2b5f77575ce"
DEMO_PROFILE = {
    "display_name": "Dana Demo",
    "bio": (
        "Trying out backup codes before my real accounts. Film cameras, strong coffee, long "
        "walks on the ridge.\nLocked out once in 2024: never again."
    ),
    "email": "demo@example.com",
    "avatar": "demo.svg",
}


def prepare_database() -> None:
    """Apply the migrations. A database made by `create_all` (before migrations existed, or by
    the tests) is first marked with the revision whose schema it has: the newest if it matches
    the models, else the first one, which created the schema of those early versions."""
    tables = set(inspect(db.engine).get_table_names())
    if "users" in tables and "alembic_version" not in tables:
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        stamp(revision="head" if not differences else INITIAL_REVISION)
    upgrade()


def demo_account(reset: bool = False) -> User:
    """The demo account, created if missing; `reset` puts it back to its first state: its
    profile and password, no backup codes, no authenticator app, no sessions, no history."""
    username = current_app.config["DEMO_USERNAME"]
    password = current_app.config["DEMO_PASSWORD"]
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        user = create_user(
            db.session,
            current_hasher(),
            username,
            password,
            email=DEMO_PROFILE["email"],
            display_name=DEMO_PROFILE["display_name"],
        )
        reset = True
    if reset:
        user.password_hash = hash_password(current_hasher(), password)
        user.display_name = DEMO_PROFILE["display_name"]
        user.bio = DEMO_PROFILE["bio"]
        user.avatar = DEMO_PROFILE["avatar"]
        user.totp_secret = user.totp_pending_secret = None
        user.totp_enabled_at = user.totp_last_step = None
        user.clear_code_notice()
        for model in (BackupCode, BackupCodeSet, UserSession, PendingLogin, SecurityEvent):
            db.session.execute(delete(model).where(model.user_id == user.id))
        db.session.execute(delete(AttemptCounter).where(AttemptCounter.key == account_key(user.id)))
        db.session.commit()
    return user


def register(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db() -> None:
        """Bring the database schema up to date with the migrations (safe to run again)."""
        prepare_database()
        click.echo("Database ready.")

    @app.cli.command("demo")
    @click.option("--reset", is_flag=True, help="Put the demo account back to its first state.")
    def demo(reset: bool) -> None:
        """Create the demo account if it is missing, and print how to log in."""
        prepare_database()
        demo_account(reset=reset)
        username, password = (
            current_app.config["DEMO_USERNAME"],
            current_app.config["DEMO_PASSWORD"],
        )
        click.echo(f"Demo account: username {username!r}, password {password!r}")

    @app.cli.command("unlock-account")
    @click.argument("identifier")
    def unlock_account(identifier: str) -> None:
        """Clear an account's failure counter (after checking who is asking, out of band)."""
        user = find_user(db.session, identifier)
        if user is None:
            raise click.ClickException(f"No account matches {identifier!r}.")
        clear_failures(db.session, account_key(user.id))
        db.session.commit()
        click.echo(f"Failed attempts cleared for {user.username}.")

    @app.cli.command("prune")
    def prune() -> None:
        """Delete expired sessions, expired half-finished log-ins and stale counters of unknown
        names. Safe at any time; run it daily."""
        removed = prune_expired(
            db.session,
            current_app.extensions["sparekey_timeouts"],
            int(current_app.config["PENDING_LOGIN_SECONDS"]),
        )
        removed["counters of unknown names"] = prune_unknown_name_counters(
            db.session, current_app.extensions["sparekey_limits"]
        )
        db.session.commit()
        click.echo("Removed: " + ", ".join(f"{count} {what}" for what, count in removed.items()))

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--email", default="")
    @click.option("--phone", default="")
    @click.password_option()
    def create_user_command(username: str, email: str, phone: str, password: str) -> None:
        """Create an account from the command line."""
        username = normalise_username(username)
        problem = username_problem(username) or password_problem(password, username, email)
        try:
            phone_value = normalise_phone(phone)
        except ValueError as error:
            problem = problem or str(error)
        if problem:
            raise click.ClickException(problem)
        prepare_database()
        try:
            create_user(
                db.session,
                current_hasher(),
                username,
                password,
                email=normalise_email(email),
                phone=phone_value,
            )
        except DuplicateAccount as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"Created {username}.")
