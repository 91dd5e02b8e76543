"""Log lines on stderr in one of three formats (text, json, kv), for envparity's own loggers
and for every library's (uvicorn's included), through the standard logging module.

A log call carries its machine-readable facts as `extra=` fields; the message is for people:

    log.info("scan #%s of %s started", scan_id, env, extra={"event": "scan.started", ...})

`text` shows the message alone; `json` and `kv` (logfmt) add the fields to the time, level,
logger and message. Nothing here knows envparity's domain: app.cli.common chooses the format
and level (`--log-format`, `--log-level`, $ENVPARITY_LOG_FORMAT, $ENVPARITY_LOG_LEVEL)."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

FORMATS = ("text", "json", "kv")
LEVELS = ("debug", "info", "warning", "error", "critical")

# The attributes every LogRecord has: what is left over came in as `extra=` fields.
# `color_message` is uvicorn's coloured copy of its message; `taskName` is Python 3.12's.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}
# Loggers that say too much below WARNING, whatever level is chosen: HTTP clients log every
# request's URL (a Slack or webhook URL is a secret), botocore logs request and response
# bodies at DEBUG (a decrypted SSM SecureString among them).
_WARNINGS_ONLY = ("httpx", "httpcore", "urllib3", "botocore", "boto3", "s3transfer")
# APScheduler logs two lines per job run at INFO that the scan's own lines say better;
# Alembic a dozen lines of its set-up each time a process checks the schema.
_QUIET_BELOW_DEBUG = ("apscheduler", "alembic")


def timestamp(record: logging.LogRecord) -> str:
    """The record's time in UTC, to the millisecond: `2026-11-22T04:00:00.123Z`."""
    when = datetime.fromtimestamp(record.created, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def fields_of(record: logging.LogRecord) -> dict[str, object]:
    """The `extra=` fields of a record, in the order they were given."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD and not key.startswith("_")
    }


class TextFormatter(logging.Formatter):
    """`2026-11-22T04:00:00.123Z INFO app.main: message`; a traceback follows on its lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return timestamp(record)


class _Structured(logging.Formatter):
    def document(self, record: logging.LogRecord) -> dict[str, object]:
        """time, level, logger, message, then the record's fields (a field named like one of
        the four comes as `field.NAME`), then the traceback, if any, as `exception`."""
        out: dict[str, object] = {
            "time": timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in fields_of(record).items():
            out[f"field.{key}" if key in out else key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return out


class JsonFormatter(_Structured):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            self.document(record), ensure_ascii=False, separators=(",", ":"), default=str
        )


_BARE = re.compile(r"[^\s=\"\\\x00-\x1f\x7f]+")  # a value that needs no quotes
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")


def kv_value(value: object) -> str:
    """A logfmt value: bare when it can be, else a double-quoted JSON string (`\\"`, `\\\\`,
    `\\n`...), so that every record stays on one line and parses back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple | dict):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    else:
        text = str(value)
    if _BARE.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def kv_key(key: str) -> str:
    return _KEY_CHARS.sub("_", key) or "_"


class KeyValueFormatter(_Structured):
    """One logfmt line per record: `time=... level=info logger=app.main message="..." k=v`."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{kv_key(k)}={kv_value(v)}" for k, v in self.document(record).items())


def formatter(name: str) -> logging.Formatter:
    """The formatter of one of FORMATS."""
    if name == "json":
        return JsonFormatter()
    if name == "kv":
        return KeyValueFormatter()
    return TextFormatter()


class _Handler(logging.StreamHandler[TextIO]):
    """envparity's own handler on the root logger (so that a second setup replaces it)."""


def configure(level: str, name: str, stream: TextIO | None = None) -> None:
    """Every logger's records at `level` and above to `stream` (stderr) in format `name`.

    When the root logger already has a handler that is not ours, the program hosting
    envparity (a test runner, an embedding application) owns logging: it is left as it is,
    as logging.basicConfig would."""
    root = logging.getLogger()
    numeric = logging.getLevelName(level.upper())
    for logger in _WARNINGS_ONLY:
        logging.getLogger(logger).setLevel(logging.WARNING)
    for logger in _QUIET_BELOW_DEBUG:
        logging.getLogger(logger).setLevel(
            logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING
        )
    if any(not isinstance(h, _Handler) for h in root.handlers):
        return
    for old in list(root.handlers):
        root.removeHandler(old)
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(name))
    root.addHandler(handler)
    root.setLevel(numeric)
