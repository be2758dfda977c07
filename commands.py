"""`flask` commands: init-db, demo, create-user, unlock-account."""

from __future__ import annotations

import click
from flask import Flask, current_app
from sqlalchemy import delete, select

from extensions import db
from models import AttemptCounter, BackupCodeSet, SecurityEvent, User, UserSession
from security.accounts import (
    DuplicateAccount,
    create_user,
    find_user,
    normalise_email,
    normalise_phone,
    normalise_username,
    username_problem,
)
from security.attempts import account_key, clear_failures
from security.keys import current_hasher
from security.passwords import hash_password, password_problem

DEMO_PROFILE = {
    "display_name": "Dana Demo",
    "bio": "Trying out backup codes. Coffee, film cameras and long walks.",
    "email": "demo@example.com",
}


def register(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db() -> None:
        """Create the database tables (safe to run again)."""
        db.create_all()
        click.echo("Database ready.")

    @app.cli.command("demo")
    @click.option("--reset", is_flag=True, help="Put the demo account back to its first state.")
    def demo(reset: bool) -> None:
        """Create the demo account if it is missing, and print how to log in."""
        db.create_all()
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
            user.bio = DEMO_PROFILE["bio"]
            db.session.commit()
        elif reset:
            user.password_hash = hash_password(current_hasher(), password)
            user.display_name = DEMO_PROFILE["display_name"]
            user.bio = DEMO_PROFILE["bio"]
            for model in (BackupCodeSet, UserSession, SecurityEvent):
                db.session.execute(delete(model).where(model.user_id == user.id))
            db.session.execute(
                delete(AttemptCounter).where(AttemptCounter.key == account_key(user.id))
            )
            db.session.commit()
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
        db.create_all()
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
