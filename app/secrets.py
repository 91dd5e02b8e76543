"""The installation's secret-hashing key: ENVPARITY_SECRET_KEY, or a key file made on first use."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
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
        _create_key_file(path)
    try:
        return _decode(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the secret key: {exc.strerror}") from None


def _create_key_file(path: Path) -> None:
    """Writes a new key where none is, atomically: the key goes to a file of its own first,
    which is then linked into place whole. A process reading the key at the same moment sees
    no file or the whole key, never an empty one; of several processes creating it at once,
    the first link wins and the others use its key."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp: mode 0600
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temporary, path)  # fails if the key exists: never replaces one
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError:  # a file system without hard links: create it in place
            with contextlib.suppress(FileExistsError):
                key = Path(temporary).read_bytes()
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(key)
    finally:
        os.unlink(temporary)


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
