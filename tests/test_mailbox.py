"""The development mailbox: shown in development only, a 404 anywhere else."""

from __future__ import annotations


def test_the_mailbox_exists_only_in_development(tmp_path, app_factory):
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "1.log").write_text("Subject: Your Sparekey password was changed\n\nhello <b>\n")
    development = app_factory(
        "dev.db", SPAREKEY_ENV="development", MAIL_FILE_PATH=str(folder), SECRET_KEY="x" * 48
    )
    page = development.test_client().get("/dev/mailbox/").get_data(as_text=True)
    assert "Your Sparekey password was changed" in page and "hello &lt;b&gt;" in page
    test_app = app_factory("t.db")
    assert test_app.test_client().get("/dev/mailbox/").status_code == 404
