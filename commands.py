"""`flask` commands: init-db, demo, create-user, unlock-account, prune."""

from __future__ import annotations

import click
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask, current_app
from flask_migrate import stamp, upgrade
from sqlalchemy import inspect

from blueprints.context import app_context_of
from extensions import db
from security.accounts import (
    normalise_email,
    normalise_phone,
    normalise_username,
    username_problem,
)
from security.maintenance import demo_account as demo_account_use_case
from security.maintenance import prune as prune_use_case
from security.maintenance import unlock_account as unlock_account_use_case
from security.outcomes import Refused
from security.passwords import password_problem
from security.signing_in import register_account

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


def demo_account(reset: bool = False):
    """The demo account, created if missing; `reset` puts it back to its first state."""
    return demo_account_use_case(
        app_context_of(current_app),
        current_app.config["DEMO_USERNAME"],
        current_app.config["DEMO_PASSWORD"],
        DEMO_PROFILE,
        reset=reset,
    )


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
        user = unlock_account_use_case(app_context_of(current_app), identifier)
        if isinstance(user, Refused):
            raise click.ClickException(user.message)
        click.echo(f"Failed attempts cleared for {user.username}.")

    @app.cli.command("prune")
    def prune() -> None:
        """Delete expired sessions, expired half-finished log-ins and stale counters of unknown
        names. Safe at any time; run it daily."""
        removed = prune_use_case(app_context_of(current_app))
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
        created = register_account(
            app_context_of(current_app),
            username,
            password,
            email=normalise_email(email),
            phone=phone_value,
        )
        if isinstance(created, Refused):
            raise click.ClickException(created.message)
        click.echo(f"Created {username}.")
