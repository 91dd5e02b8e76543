"""Time in one place: the clock the outer loops read and wait on, and the parsing and
formatting of times and durations every command, config and JSON document uses.

The scanner (and its heartbeat), the evaluator and the deliverer take a `Clock`, and the
runtime carries the one that the scheduled scans, `serve` and the commands build them with;
production passes `SYSTEM`, and tests pass a clock they move forward themselves, so nothing in
the suite waits on real time to see a waiver expire or a reminder come due."""

from __future__ import annotations

import re
import threading
import time as _time
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from app.errors import InvalidInput


class Clock(Protocol):
    """What the loops need of time: the UTC now, a monotonic reading and a wait that a stop
    event can cut short."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait until `event` is set or `seconds` pass; True when the event is set."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return _time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            _time.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(max(0.0, seconds))


SYSTEM: Clock = SystemClock()


def utcnow() -> datetime:
    """The real UTC now, where no Clock is passed (a request, a one-off command)."""
    return datetime.now(UTC)


class TimeOutOfRange(InvalidInput):
    """A time that leaves the years 1-9999 once turned to UTC (0001-01-01T00:00+01:00): it
    names no moment a datetime, a database column or a JSON document of envparity holds."""


def in_utc(value: datetime) -> datetime:
    """`value` in UTC, or TimeOutOfRange (never OverflowError)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise TimeOutOfRange(
            f"{value.isoformat()} lies outside the years 1 to 9999 in UTC, "
            "which the database cannot hold"
        ) from None


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, as every JSON document of envparity writes times."""
    return in_utc(value).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """ISO 8601; UTC unless the time carries an offset; a date alone means its end. A time
    that leaves the years 1-9999 once turned to UTC is TimeOutOfRange."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), time.max, UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{text!r} is not an ISO 8601 time like 2026-11-20T10:00") from None
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    in_utc(value)
    return value


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """An expiry: ISO time, or a date, which expires as that day begins (UTC). With `now`, an
    expiry not after it is refused: a waiver dead on arrival is a typo (a year, a day-month
    swap) that would otherwise hide nothing without a word."""
    expires = parse_time(text + "T00:00" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else text)
    if now is not None and expires <= now:
        raise InvalidInput(
            f"expiry {text} is in the past ({format_time(expires)}): the waiver would never "
            "apply; give a later date or time"
        )
    return expires


DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `1h`, `2d`, `1w` as a timedelta."""
    m = DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 1h, 2d")
    try:
        return timedelta(**{_UNITS[m[2]]: int(m[1])})
    except OverflowError:
        raise ValueError(f"{text!r} is longer than any duration envparity can wait") from None


_SECONDS_PER = {"w": 604800, "d": 86400, "h": 3600, "m": 60}


def format_duration(value: timedelta) -> str:
    """A duration as the config writes one, in its largest whole unit: `90s`, `15m`, `1w`
    (parse_duration reads it back as the same duration)."""
    seconds = value.total_seconds()
    if seconds != int(seconds):
        return f"{seconds:g}s"
    whole = int(seconds)
    for unit, size in _SECONDS_PER.items():
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
