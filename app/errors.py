"""The error tree: every error carries a message a person can act on and an HTTP status."""

from __future__ import annotations


class EnvparityError(Exception):
    """Base of every error envparity raises on purpose."""

    status: int = 500
    exit_code: int = 2

    def __init__(self, message: str, *, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class ConfigError(EnvparityError):
    """The configuration file is missing or invalid; the message names file, line and key."""

    status = 400


class NotFound(EnvparityError):
    status = 404


class Conflict(EnvparityError):
    status = 409


class InvalidInput(EnvparityError):
    """A document or argument was refused whole; nothing of it was stored."""

    status = 422


class ScanInProgress(Conflict):
    """Another scan of the same environment is running."""

    def __init__(self, environment: str, scan_id: int, owner: str, started: str) -> None:
        super().__init__(
            f"a scan of {environment!r} is already running (scan #{scan_id}, "
            f"started {started} by {owner})",
            detail={"scan_id": scan_id},
        )
        self.scan_id = scan_id


class SchemaOutOfDate(EnvparityError):
    """The database schema is behind the code; `envparity db upgrade` brings it up."""

    status = 503
