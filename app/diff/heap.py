"""Large heaps of acyclic objects: what the cyclic garbage collector should leave alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Objects a paused stretch must have left tracked for its keep to be promoted on resuming
# (below that, the young collection owed is cheap, and garbage is freed as soon as usual).
PROMOTE_AT = 10_000


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
            if gc.get_count()[0] >= PROMOTE_AT:
                _promote_all()
            gc.enable()


def _promote_all() -> None:
    """Moves every tracked object into the oldest generation without looking at it.

    What the work made and keeps (a side of a million resources, its indexes, a report)
    would otherwise be walked by the first young collection after it and again by the next
    middle one, at once: 0.1-0.2 s for two sides of 100,000, more than comparing them. In the
    oldest generation it is walked only by the next full collection, which the interpreter
    runs when enough survivors of younger collections have piled up (objects promoted here
    do not count towards that), so cyclic garbage made meanwhile is still freed, only
    later; a stretch that made fewer than PROMOTE_AT objects is left to the young
    collection, which then costs little. `freeze` then `unfreeze` is how the gc module does
    that move (both are O(1): each splices one list of objects into another)."""
    gc.freeze()
    gc.unfreeze()
