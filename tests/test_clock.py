"""app.clock: times that leave the years 1-9999 in UTC are refused, not an OverflowError; the
clock the loops wait on (and the tests' FakeClock, which moves only when told)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.clock import (
    SYSTEM,
    TimeOutOfRange,
    format_time,
    in_utc,
    parse_duration,
    parse_expiry,
    parse_time,
)
from app.errors import InvalidInput
from tests.support import FakeClock

OUT_OF_RANGE = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
]


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_a_time_outside_the_years_1_to_9999_in_utc_is_invalid_input(text: str) -> None:
    with pytest.raises(TimeOutOfRange, match="outside the years 1 to 9999 in UTC"):
        parse_time(text)
    with pytest.raises(TimeOutOfRange, match="outside the years 1 to 9999 in UTC"):
        parse_expiry(text)
    with pytest.raises(InvalidInput):
        parse_expiry(text, datetime.now(UTC))


def test_formatting_a_time_outside_the_years_in_utc_is_invalid_input() -> None:
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(TimeOutOfRange):
        format_time(early)
    with pytest.raises(TimeOutOfRange):
        in_utc(early)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
        ("2026-11-20T10:00", "2026-11-20T10:00:00Z"),
        ("2026-11-20T12:00:00+02:00", "2026-11-20T10:00:00Z"),
    ],
)
def test_times_at_the_edges_of_the_years_still_parse(text: str, utc: str) -> None:
    assert format_time(parse_time(text)) == utc


def test_a_duration_no_timedelta_holds_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="longer than any duration"):
        parse_duration("99999999999w")


def test_the_system_clock_waits_for_the_event_or_the_time() -> None:
    stop = threading.Event()
    assert SYSTEM.wait(stop, 0.01) is False
    stop.set()
    assert SYSTEM.wait(stop, 30) is True  # at once


def test_fake_clock_moves_only_when_told() -> None:
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    clock = FakeClock(start)
    mono = clock.monotonic()
    clock.sleep(90)
    clock.advance(30)
    assert clock.now() == start + timedelta(minutes=2)
    assert clock.monotonic() == mono + 120
    assert clock.slept == [90]


def test_fake_clock_wait_returns_when_set_or_when_moved_past_it() -> None:
    clock = FakeClock()
    stop = threading.Event()
    stop.set()
    assert clock.wait(stop, 3600) is True  # at once, the clock unmoved
    assert clock.slept == []
    stop.clear()
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(clock.wait(stop, 10)))
    waiter.start()
    deadline = time.monotonic() + 10
    while not clock.waiting:
        assert time.monotonic() < deadline, "the wait never began"
        time.sleep(0.01)
    clock.advance(5)
    waiter.join(0.2)
    assert waiter.is_alive()  # 5 of its 10 seconds have passed
    clock.advance(5)
    waiter.join(5)
    assert results == [False]
