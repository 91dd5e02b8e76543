"""The engine finds the differences of two documents that differ in mappings alone without
DeepDiff: what it finds must be exactly what DeepDiff finds (paths, changes, values as shown,
a rotated secret), and it must leave every pair whose differences reach a list to DeepDiff."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.diff.items import _mapping_findings, _prune, deepdiff_findings
from app.diff.normalize import SECRET_PLACEHOLDER
from app.states import Change

MARKER = "secret:hmac-sha256:" + "ab" * 16  # as collectors.secrets.hashing makes them

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, 2.5, -1.5]),
    st.sampled_from(
        ["a", "b", "10", "", SECRET_PLACEHOLDER, f"postgres://u:{SECRET_PLACEHOLDER}@h"]
    ),
    st.sampled_from([MARKER, MARKER.replace("ab", "cd")]),
)
keys = st.sampled_from(["a", "b", "c", "pool", "host", "tags"])


def documents(lists: bool) -> st.SearchStrategy[dict[str, Any]]:
    leaves = st.one_of(scalars, st.lists(scalars, max_size=3)) if lists else scalars
    tree = st.recursive(
        leaves, lambda inner: st.dictionaries(keys, inner, max_size=4), max_leaves=12
    )
    return st.dictionaries(keys, tree, max_size=5)


def mutated(doc: dict[str, Any], data: st.DataObject, lists: bool) -> dict[str, Any]:
    """The document with a few values changed, keys added and removed, here and deeper."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        action = data.draw(st.sampled_from(["keep", "keep", "change", "drop", "deeper"]))
        if action == "keep":
            out[key] = value
        elif action == "change":
            out[key] = data.draw(documents(lists) if data.draw(st.booleans()) else scalars)
        elif action == "deeper" and isinstance(value, dict):
            out[key] = mutated(value, data, lists)
        elif action == "deeper":
            out[key] = value
    for key in data.draw(st.lists(keys, max_size=2)):
        out.setdefault(key, data.draw(scalars))
    return out


def as_set(findings: list[Any]) -> set[tuple[Any, ...]]:
    return {
        (parts, change, repr(left), repr(right), detail)
        for parts, change, left, right, detail in findings
    }


def both_ways(data: st.DataObject, lists: bool) -> tuple[Any, set[tuple[Any, ...]]]:
    """A random pair of documents, pruned: the engine's direct findings (None when it leaves
    the pair to DeepDiff) and DeepDiff's."""
    left = data.draw(documents(lists))
    pruned = _prune(left, mutated(left, data, lists))
    direct = _mapping_findings(*pruned)
    return direct, as_set(deepdiff_findings({0: pruned})[0])


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_findings_in_mappings_are_deepdiffs(data: st.DataObject) -> None:
    direct, deep = both_ways(data, lists=False)
    assert direct is not None  # no list anywhere: always found directly
    assert as_set(direct) == deep


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_pair_whose_differences_reach_a_list_is_left_to_deepdiff(data: st.DataObject) -> None:
    direct, deep = both_ways(data, lists=True)
    if direct is not None:  # no difference reaches a list on both sides: still DeepDiff's
        assert as_set(direct) == deep


def test_a_list_changed_inside_is_left_to_deepdiff() -> None:
    pruned = _prune({"rules": [1, 2, 3], "pool": 10}, {"rules": [1, 3], "pool": 20})
    assert _mapping_findings(*pruned) is None
    found = deepdiff_findings({0: pruned})[0]
    assert ("pool",) in {parts for parts, *_ in found}
    assert any(parts[0] == "rules" for parts, *_ in found)


def test_a_rotated_secret_reads_as_rotated() -> None:
    before = {"db": {"url": f"postgres://u:{SECRET_PLACEHOLDER}@h", "pool": 10}}
    after = {"db": {"url": f"postgres://u:{SECRET_PLACEHOLDER}@h", "pool": 10}}
    assert _mapping_findings(*_prune(before, after)) == []
    marker = {"token": MARKER}
    rotated = {"token": MARKER.replace("ab", "cd")}
    [(parts, change, left, right, detail)] = _mapping_findings(*_prune(marker, rotated)) or []
    assert (parts, change, left, right, detail) == (
        ("token",),
        Change.CHANGED,
        "(secret)",
        "(secret) (changed)",
        "secret rotated",
    )
