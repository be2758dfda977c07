"""The development mailbox: shown in development only, a 404 anywhere else."""

from __future__ import annotations

from app import create_app
from tests.helpers import database_uri, fresh_tables


def test_the_mailbox_exists_only_in_development(tmp_path):
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "1.log").write_text("Subject: Your Sparekey password was changed\n\nhello <b>\n")
    development = create_app(
        {
            "SPAREKEY_ENV": "development",
            "SQLALCHEMY_DATABASE_URI": database_uri(tmp_path, "dev.db"),
            "MAIL_FILE_PATH": str(folder),
            "SECRET_KEY": "x" * 48,
        }
    )
    fresh_tables(development)
    page = development.test_client().get("/dev/mailbox/").get_data(as_text=True)
    assert "Your Sparekey password was changed" in page and "hello &lt;b&gt;" in page
    test_app = create_app(
        {"SPAREKEY_ENV": "test", "SQLALCHEMY_DATABASE_URI": database_uri(tmp_path, "t.db")}
    )
    fresh_tables(test_app)
    assert test_app.test_client().get("/dev/mailbox/").status_code == 404
