"""The development mailbox: newest message first, as saved by Flask-Mailman's file backend."""

from __future__ import annotations

from pathlib import Path

from flask import current_app, render_template

from blueprints.mailbox import bp


@bp.route("/dev/mailbox/")
def mailbox():
    folder = Path(current_app.config["MAIL_FILE_PATH"])
    files = sorted(folder.glob("*.log"), key=lambda f: f.stat().st_mtime, reverse=True)
    messages = [
        {"name": file.name, "text": file.read_text(encoding="utf-8", errors="replace")}
        for file in files[:50]
    ]
    return render_template("mailbox/mailbox.html", messages=messages, folder=folder)
