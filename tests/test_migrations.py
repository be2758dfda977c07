"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from app import create_app
from extensions import db
from tests.helpers import PASSWORD, Person, database_uri, make_user


def empty_database(app) -> None:
    with app.app_context():
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()


def test_migrations_build_the_same_schema_as_the_models(tmp_path):
    app = create_app(
        {"SPAREKEY_ENV": "test", "SQLALCHEMY_DATABASE_URI": database_uri(tmp_path, "m.db")}
    )
    empty_database(app)
    try:
        with app.app_context():
            upgrade()
            with db.engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                differences = compare_metadata(context, db.metadata)
        assert differences == []
        # The migrated database works: an account can be made and can log in.
        make_user(app, "alice", PASSWORD)
        assert Person(app.test_client()).login("alice", PASSWORD).status_code == 302
        with app.app_context():
            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    finally:
        empty_database(app)
        with app.app_context():
            db.engine.dispose()


def test_init_db_adopts_a_database_made_before_migrations(app, runner):
    """A database from `create_all` (earlier versions) is stamped, then upgraded, not rebuilt."""
    make_user(app, "alice", PASSWORD)
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        version = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.session.execute(text("DROP TABLE alembic_version"))
        db.session.commit()
    assert version
    assert Person(app.test_client()).login("alice", PASSWORD).status_code == 302


def test_init_db_refuses_a_database_from_before_migrations_it_cannot_match(tmp_path):
    """A schema of the first version, made without migrations: init-db does not guess which
    revision it is at (it used to mark any such database as the first one). It refuses, says
    what to do and changes nothing; marked by hand as the message says, it is then upgraded."""
    app = create_app(
        {"SPAREKEY_ENV": "test", "SQLALCHEMY_DATABASE_URI": database_uri(tmp_path, "old.db")}
    )
    empty_database(app)
    try:
        with app.app_context():
            upgrade(revision="e2b5f77575ce")
            db.session.execute(text("DROP TABLE alembic_version"))
            db.session.commit()
        runner = app.test_cli_runner()
        result = runner.invoke(args=["init-db"])
        assert result.exit_code != 0
        assert "no migration history" in result.output and "db stamp <revision>" in result.output
        with app.app_context():
            inspector = inspect(db.engine)
            assert "alembic_version" not in inspector.get_table_names()
            assert "avatar" not in {c["name"] for c in inspector.get_columns("users")}
        assert runner.invoke(args=["db", "stamp", "e2b5f77575ce"]).exit_code == 0
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            columns = {c["name"] for c in inspect(db.engine).get_columns("users")}
        assert "avatar" in columns
    finally:
        empty_database(app)
        with app.app_context():
            db.engine.dispose()
