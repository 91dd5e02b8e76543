"""Large heaps of acyclic objects: what the cyclic garbage collector should leave alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pauses the cyclic collector for work that builds hundreds of thousands of objects in
    no cycle (documents parsed, redacted, normalized, compared): its full passes over such a
    heap cost more than the work itself, growing with the heap, while reference counting
    frees all of it anyway."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
