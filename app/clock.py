"""Time in one place: the clock the outer loops read and wait on, and the parsing and
formatting of times and durations every command, config and JSON document uses.

The scanner, the evaluator and the deliverer take a `Clock`; production passes `SYSTEM`, and
tests pass a clock they move forward themselves, so nothing in the suite waits on real time to
see a waiver expire or a schedule come due."""

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
    return datetime.now(UTC)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, as every JSON document of envparity writes times."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """ISO 8601; UTC unless the time carries an offset; a date alone means its end."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), time.max, UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{text!r} is not an ISO 8601 time like 2026-11-20T10:00") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
    return timedelta(**{_UNITS[m[2]]: int(m[1])})
