"""The installation key: made once on first use, private, kept outside the database."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.errors import ConfigError
from app.secrets import load_secret_key


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret.key"
    first = load_secret_key(None, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32
    assert load_secret_key(None, path) == first


def test_environment_key_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    assert load_secret_key("ab" * 32, tmp_path / "unused") == bytes.fromhex("ab" * 32)
    assert not (tmp_path / "unused").exists()
    with pytest.raises(ConfigError, match="at least 32"):
        load_secret_key("short", None)
