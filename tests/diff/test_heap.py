"""The cyclic collector paused for large acyclic work: what the work made and keeps is moved
to the oldest generation unexamined, and cyclic garbage made meanwhile is still freed."""

from __future__ import annotations

import gc
import weakref

from app.diff.heap import cycle_collection_paused


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_what_the_paused_work_keeps_is_not_walked_by_the_next_young_collections() -> None:
    with cycle_collection_paused():
        kept = [Node() for _ in range(50_000)]  # a side's records, say: tracked objects
    assert gc.get_count()[0] < 700  # no young collection is owed for them
    sample = {id(node) for node in kept[::1000]}
    young = {id(o) for generation in (0, 1) for o in gc.get_objects(generation=generation)}
    assert not sample & young  # young collections never look at them
    assert sample <= {id(o) for o in gc.get_objects(generation=2)}


def test_cyclic_garbage_made_while_paused_is_still_freed() -> None:
    with cycle_collection_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
    assert gone() is not None  # a cycle: reference counting alone cannot free it
    gc.collect()  # a full collection looks at the oldest generation too
    assert gone() is None


def test_the_collector_is_left_as_it_was() -> None:
    assert gc.isenabled()
    with cycle_collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with cycle_collection_paused():
            pass
        assert not gc.isenabled()  # disabled by its owner: not enabled behind its back
    finally:
        gc.enable()


def test_a_small_stretch_is_left_to_the_young_collection() -> None:
    with cycle_collection_paused():
        kept = [Node() for _ in range(100)]
    assert id(kept[0]) not in {id(o) for o in gc.get_objects(generation=2)}
