"""Properties of the engine over generated documents (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.diff.engine import compare
from app.diff.model import DriftItem, Rules, Side, SideResource, SourceState
from app.diff.normalize import Normalizer, canonical, doc_hash

NOW = datetime(2026, 11, 22, tzinfo=UTC)
ENVS = {
    "staging": {"env": "staging", "cidr": "10.1.0.0/16"},
    "production": {"env": "production", "cidr": "10.2.0.0/16"},
}

words = st.sampled_from(
    [
        "web",
        "db",
        "staging",
        "api",
        "i-0123456789abcdef0",
        "10.1.0.0/16",
        "x",
        "web-staging",
        "prod",
    ]
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), words)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(words, inner, max_size=4),
    max_leaves=12,
)
documents = st.dictionaries(words, values, max_size=5)
resource_sets = st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), documents, max_size=5)


def side(env: str, docs: dict[str, dict[str, Any]], hashed: bool = False) -> Side:
    def resource(key: str, doc: dict[str, Any]) -> SideResource:
        if not hashed:
            return SideResource("main", "config", "file", key, doc)
        return SideResource("main", "config", "file", key, doc, doc_hash(doc), canonical(doc))

    resources = [resource(key, doc) for key, doc in docs.items()]
    sources = {"main": SourceState("main", "file", "ok")}
    return Side(env, None, NOW, "complete", ENVS[env], sources, resources)


def mirrored(item: DriftItem) -> tuple[Any, ...]:
    change = {"added": "removed", "removed": "added"}.get(item.change, item.change)
    return (item.key, item.path, change, repr(item.right), repr(item.left))


def plain(item: DriftItem) -> tuple[Any, ...]:
    return (item.key, item.path, item.change, repr(item.left), repr(item.right))


@settings(max_examples=150, deadline=None)
@given(resource_sets)
@pytest.mark.slow
def test_a_snapshot_compared_with_itself_has_no_drift(docs: dict[str, dict[str, Any]]) -> None:
    snapshot = side("staging", docs)
    result = compare(snapshot, snapshot, Rules(environments=ENVS), NOW)
    assert result.items == []
    assert result.parity == 1.0


@settings(max_examples=150, deadline=None)
@given(resource_sets, resource_sets)
@pytest.mark.slow
def test_swapping_sides_mirrors_every_item(a: dict[str, Any], b: dict[str, Any]) -> None:
    rules = Rules(environments=ENVS)
    forward = compare(side("staging", a), side("production", b), rules, NOW)
    backward = compare(side("production", b), side("staging", a), rules, NOW)
    assert sorted(map(mirrored, forward.items)) == sorted(map(plain, backward.items))
    assert forward.parity == backward.parity


@settings(max_examples=200, deadline=None)
@given(documents)
@pytest.mark.slow
def test_normalization_is_idempotent(doc: dict[str, Any]) -> None:
    normalizer = Normalizer(vars=ENVS["staging"], foreign={"production": ENVS["production"]})
    once, _, _ = normalizer.document(doc)
    twice, _, _ = normalizer.document(once)
    assert twice == once


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(resource_sets, resource_sets, st.booleans())
def test_the_hash_first_shortcut_changes_no_result(
    a: dict[str, Any], b: dict[str, Any], cross: bool
) -> None:
    """With content hashes the engine skips resources it can prove equal; it must find the same."""
    rules = Rules(environments=ENVS)
    target = "production" if cross else "staging"
    slow = compare(side("staging", a), side(target, b), rules, NOW)
    fast = compare(side("staging", a, hashed=True), side(target, b, hashed=True), rules, NOW)
    assert sorted(map(plain, fast.items)) == sorted(map(plain, slow.items))
    assert (fast.compared, fast.parity) == (slow.compared, slow.parity)
