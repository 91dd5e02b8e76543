"""Stopping a source whose timeout fired.

Python cannot kill a thread, so a source stops itself: the runner gives each source's thread a
stop flag and sets it when the source's timeout fires; the collectors look at it at their
checkpoints (every AWS API call, every chunk of a file or an HTTP body, every page, every
resource checked or redacted) and a command's process group is killed when it is set. A source
that timed out therefore stops working at its next checkpoint instead of reading on, unseen,
until its data ends.

The flag belongs to the thread that runs the source; `carry` hands it to the worker threads a
source starts (AWS regions in parallel).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from collectors.base import CollectorError

T = TypeVar("T")

_local = threading.local()


class Stopped(CollectorError):
    """The source's timeout fired: the work it was doing is no longer wanted."""


def current() -> threading.Event | None:
    """The stop flag of the source this thread works for, if any."""
    return getattr(_local, "stop", None)


def stopped() -> bool:
    flag = current()
    return flag is not None and flag.is_set()


def checkpoint() -> None:
    """Raises Stopped when the source's timeout has fired."""
    flag = current()
    if flag is not None and flag.is_set():
        raise Stopped("the source's timeout fired")


@contextmanager
def scope(flag: threading.Event | None) -> Iterator[None]:
    """Runs the block as work of the source whose stop flag is `flag`."""
    before = current()
    _local.stop = flag
    try:
        yield
    finally:
        _local.stop = before


def carry(fn: Callable[..., T]) -> Callable[..., T]:
    """`fn` wrapped so it runs under this thread's stop flag in whatever thread calls it."""
    flag = current()

    def run(*args: Any, **kwargs: Any) -> T:
        with scope(flag):
            return fn(*args, **kwargs)

    return run
