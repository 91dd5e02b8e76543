"""Process settings from ENVPARITY_* variables; the config file itself is app.config."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What the process environment may set. Every field is ENVPARITY_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="ENVPARITY_", extra="ignore")

    config: Path | None = None
    database_url: str | None = None
    # The per-installation HMAC key for secrets, as hex or any string of >= 32 characters.
    secret_key: str | None = None
    secret_key_file: Path | None = None
    # Logs on stderr (`--log-level`, `--log-format` win): debug, info, warning, error or
    # critical [default: info for serve and scheduler, warning for the other commands]...
    log_level: str | None = None
    # ...as text, json (one object per line) or kv (logfmt) lines [default: text].
    log_format: str | None = None
    # The API token for `--api` (gate, push).
    token: str | None = None


def get_settings() -> Settings:
    return Settings()
