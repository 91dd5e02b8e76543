"""The installation's secret-hashing key: ENVPARITY_SECRET_KEY, or a key file made on first use."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from app.config import SecretsConfig
from app.errors import ConfigError
from collectors.secrets import Redactor, SecretHasher

DEFAULT_KEY_FILE = Path("~/.config/envparity/secret.key")


def _decode(text: str, origin: str) -> bytes:
    text = text.strip()
    if len(text) < 32:
        raise ConfigError(f"{origin}: the secret key must be at least 32 characters")
    # 64+ hex digits are 32+ random bytes (what a generated key file holds); anything else
    # is taken as a passphrase, byte for byte.
    if len(text) >= 64 and re.fullmatch(r"[0-9a-fA-F]+", text) and len(text) % 2 == 0:
        return bytes.fromhex(text)
    return text.encode("utf-8")


def key_file_path(explicit: Path | str | None) -> Path:
    return Path(explicit or DEFAULT_KEY_FILE).expanduser()


def load_secret_key(env_value: str | None, key_file: Path | str | None) -> bytes:
    """The key from the environment, else from its file, which is created (mode 0600) if missing."""
    if env_value:
        return _decode(env_value, "ENVPARITY_SECRET_KEY")
    path = key_file_path(key_file)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
    try:
        return _decode(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the secret key: {exc.strerror}") from None


def make_redactor(
    env_value: str | None, key_file: Path | str | None, rules: SecretsConfig | None = None
) -> Redactor:
    rules = rules or SecretsConfig()
    return Redactor(
        SecretHasher(load_secret_key(env_value, key_file)),
        rules.key_pattern,
        extra_words=rules.key_words,
        plain_keys=rules.plain_keys,
        disabled=rules.disable,
    )
