"""Configuration from .env: read by the servers and commands, and the environment wins."""

from __future__ import annotations

import os

import config


def test_env_file_fills_what_the_environment_leaves_unset(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "BASE_DIR", tmp_path)
    (tmp_path / ".env").write_text(
        "SPAREKEY_ENV_FILE_ONLY=from-file\nSPAREKEY_ENV_BOTH=from-file\n"
    )
    monkeypatch.setenv("SPAREKEY_ENV_BOTH", "from-environment")
    monkeypatch.delenv("SPAREKEY_ENV_FILE_ONLY", raising=False)
    config.load_env_file()
    try:
        assert os.environ["SPAREKEY_ENV_FILE_ONLY"] == "from-file"
        assert os.environ["SPAREKEY_ENV_BOTH"] == "from-environment"
    finally:
        os.environ.pop("SPAREKEY_ENV_FILE_ONLY", None)
