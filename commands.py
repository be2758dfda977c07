"""`flask` commands: init-db, demo, create-user, unlock-account, prune."""

from __future__ import annotations

import unicodedata

import click
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask, current_app
from flask_migrate import stamp, upgrade
from sqlalchemy import inspect
from werkzeug.datastructures import MultiDict

from blueprints.auth.forms import SignupForm
from blueprints.context import app_context_of
from extensions import db
from security.accounts import normalise_email, normalise_phone
from security.demo import DEMO_PROFILE, rules_from_config
from security.maintenance import demo_account as demo_account_use_case
from security.maintenance import prune as prune_use_case
from security.maintenance import unlock_account as unlock_account_use_case
from security.outcomes import Refused
from security.signing_in import register_account

UNVERSIONED_DATABASE = """\
This database has Sparekey's tables but no migration history (no alembic_version table), and
its schema is not the one this version's models describe ({differences}). Which migration it
is at cannot be told for sure, so nothing was changed.
Back it up first (docs/operations.md, "Backups"). Then either:
- if you know the revision its schema matches (migrations/versions/), mark it with
  `flask --app app db stamp <revision>` and run `flask --app app init-db` again; or
- point DATABASE_URL at a new, empty database, run `flask --app app init-db` there, and copy
  the data across.
In development, deleting the SQLite file under instance/ starts afresh."""


def prepare_database() -> None:
    """Bring the schema up to the newest migration.

    An empty database is migrated from the first revision. A database with this app's tables
    but no migration history (made by `create_all`: before migrations existed, or by the
    tests) is marked as the newest revision only when its schema is exactly what the models
    describe, so the mark states a fact; any other such database is refused, unchanged
    (UNVERSIONED_DATABASE says what to do). Tables of other applications are ignored."""
    tables = set(inspect(db.engine).get_table_names())
    if "alembic_version" not in tables and tables & set(db.metadata.tables):
        differences = schema_differences()
        if differences:
            raise click.ClickException(
                UNVERSIONED_DATABASE.format(differences=describe(differences))
            )
        stamp(revision="head")
    upgrade()


def schema_differences() -> list:
    """What the database's tables lack or have beyond the models (autogenerate's comparison),
    among this app's tables only."""
    ours = set(db.metadata.tables)

    def only_ours(name, type_, parent_names) -> bool:
        return type_ != "table" or name in ours

    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": only_ours})
        return compare_metadata(context, db.metadata)


def describe(differences: list, shown: int = 3) -> str:
    """ "add_column users avatar, remove_index ix_x and 4 more": the first few differences."""
    names = []
    for difference in differences[:shown]:
        # A column's changes come as a list of tuples; anything else as one tuple: the
        # operation, then strings and schema objects (a table, a column, an index).
        step = difference[0] if isinstance(difference, list) else difference
        words = [
            part if isinstance(part, str) else getattr(part, "name", None) for part in step[:4]
        ]
        names.append(" ".join(word for word in words if isinstance(word, str)))
    more = len(differences) - shown
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


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
        """Create the demo account if it is missing, and print how to log in (not in
        production)."""
        if current_app.config["SPAREKEY_ENV"] == "production":
            raise click.ClickException(DEMO_IN_PRODUCTION)
        if current_app.config["DEMO_MODE"]:
            raise click.ClickException(SHARED_DEMO_IN_DEMO_MODE)
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
        click.echo(
            f"Failed attempts cleared for {user.username} (recorded in its security events)."
        )

    @app.cli.command("prune")
    def prune() -> None:
        """Delete demo sandboxes that are over, expired sessions, expired half-finished log-ins
        and stale counters of unknown names. Safe at any time; run it daily (every few minutes
        on a public demo host)."""
        removed = prune_use_case(app_context_of(current_app), rules_from_config(current_app.config))
        click.echo("Removed: " + ", ".join(f"{count} {what}" for what, count in removed.items()))

    @app.cli.command("create-user")
    @click.argument("username")
    @click.option("--email", default="")
    @click.option("--phone", default="")
    @click.password_option()
    def create_user_command(username: str, email: str, phone: str, password: str) -> None:
        """Create an account from the command line, checked as sign-up checks one (not with
        DEMO_MODE on: every account there is a sandbox)."""
        if current_app.config["DEMO_MODE"]:
            raise click.ClickException(REAL_ACCOUNT_IN_DEMO_MODE)
        given = {"username": username, "email": email, "phone": phone, "password": password}
        problems = control_character_problems(given)
        if problems:
            raise click.ClickException("\n".join(problems))
        prepare_database()
        form = SignupForm(formdata=MultiDict(given), meta={"csrf": False})
        if not form.validate():
            raise click.ClickException(
                "\n".join(
                    f"{name}: {message}"
                    for name, messages in form.errors.items()
                    for message in messages
                )
            )
        # The form normalised them (lower-case name; the phone's digits); empty means none.
        created = register_account(
            app_context_of(current_app),
            form.username.data,
            password,
            email=normalise_email(form.email.data),
            phone=normalise_phone(form.phone.data),
        )
        if isinstance(created, Refused):
            raise click.ClickException(created.message)
        click.echo(f"Created {created.username}.")


DEMO_IN_PRODUCTION = (
    "`flask demo` does not run in production: its account's password is public "
    "(DEMO_PASSWORD), so anyone could sign in to it. Create real accounts with "
    "`flask --app app create-user`."
)


SHARED_DEMO_IN_DEMO_MODE = (
    'DEMO_MODE is on: every visitor gets a sandbox of their own with "Try the demo", so the '
    "shared demo account (whose password is public) is not made here."
)
REAL_ACCOUNT_IN_DEMO_MODE = (
    "DEMO_MODE is on: every account on this site is a demo sandbox, deleted within "
    "DEMO_TTL_SECONDS. Turn DEMO_MODE off to create real accounts."
)


def control_character_problems(given: dict[str, str]) -> list[str]:
    """A control character (a tab, an escape, a pasted line end ...) in any value: no browser's
    form sends one, and nobody could type it at log-in."""
    problems = []
    for name, value in given.items():
        bad = [character for character in value if unicodedata.category(character) == "Cc"]
        if bad:
            problems.append(
                f"{name}: contains a control character (U+{ord(bad[0]):04X}); "
                "type it again without one."
            )
    return problems
