"""Fuzzed pushes and file contents of random shape, depth and size: each is stored or refused
with a clear error (a 4xx), never an unexpected exception, and each in bounded time."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import runtime
from app.errors import EnvparityError
from app.snapshots import service
from app.snapshots.schemas import load_json
from collectors.base import CollectorError, Resource
from collectors.files import parse
from collectors.limits import Limits
from collectors.runner import check_limits, redact_resources
from tests.support import Project, make_redactor

LIMITS = Limits(max_depth=16, max_string_length=4096, max_key_length=256)
redactor = make_redactor()

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.text(alphabet=st.characters(codec="utf-8"), min_size=4000, max_size=5000)
)
trees = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=300), inner, max_size=3)
    ),
    max_leaves=40,
)


def deep(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


documents = st.one_of(
    trees,
    st.builds(deep, st.integers(min_value=10, max_value=400), trees),
    st.dictionaries(st.text(max_size=20), trees, max_size=4),
)


@pytest.fixture
def push_runtime(project: Project) -> Any:
    project.write_config("environments:\n  fleet: {}\nlimits: {max_depth: 16}\n")
    rt = runtime.load(project.config)
    yield rt
    rt.close()


def push_of(attributes: Any, key: str, taken_at: str) -> dict[str, Any]:
    return {
        "taken_at": taken_at,
        "sources": [{"name": "agent", "type": "push", "status": "ok", "error": None}],
        "resources": [
            {
                "source": "agent",
                "category": "config",
                "resource_type": "file",
                "key": key,
                "attributes": attributes,
            }
        ],
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    attributes=documents,
    key=st.text(min_size=1, max_size=300),
    taken_at=st.sampled_from(["2026-11-22T04:00:00Z", "2099-01-01T00:00:00Z", "2026-11-22"]),
)
@pytest.mark.slow
def test_a_fuzzed_push_is_stored_or_refused(
    push_runtime: Any, attributes: Any, key: str, taken_at: str
) -> None:
    body = json.dumps(push_of(attributes, key, taken_at), allow_nan=True)
    started = time.monotonic()
    refused: EnvparityError | None = None
    try:
        data = load_json(body)
        with push_runtime.sessions.begin() as session:
            service.push(session, push_runtime.config, "fleet", data, push_runtime.redactor)
    except EnvparityError as exc:
        refused = exc
    assert refused is None or refused.status in (400, 413, 422), refused
    assert time.monotonic() - started < 5


@settings(max_examples=150, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=2000),
        st.builds(json.dumps, documents),
        st.builds(lambda n: "[" * n + "]" * n, st.integers(min_value=1, max_value=50_000)),
        st.builds(lambda n: "a: " + "[" * n + "]" * n, st.integers(min_value=1, max_value=3000)),
        st.builds(
            lambda n: "".join(f"k{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, n)).replace(
                "*a0, *a0", "1, 2"
            ),
            st.integers(min_value=2, max_value=60),
        ),
    ),
    fmt=st.sampled_from(["yaml", "json", "toml", "ini", "env", "properties"]),
)
def test_fuzzed_file_contents_parse_or_fail_their_source(text: str, fmt: Any) -> None:
    started = time.monotonic()
    try:
        attributes = parse(text, fmt, "fuzz", LIMITS.max_yaml_nodes)
        resources = [Resource("config", "file", "fuzz", attributes)]
        check_limits(resources, LIMITS)
        redact_resources(resources, redactor)
    except CollectorError:
        pass
    assert time.monotonic() - started < 5


def test_the_fuzzed_shapes_reach_both_outcomes(tmp_path: Path) -> None:
    """The fuzz tests above would pass vacuously if everything were refused (or stored)."""
    ok = parse('{"a": [1, 2, {"b": "c"}]}', "json", "fine")
    check_limits([Resource("config", "file", "fine", ok)], LIMITS)
    with pytest.raises(CollectorError):
        check_limits([Resource("config", "file", "deep", {"v": deep(40, 1)})], LIMITS)
    with pytest.raises(CollectorError):
        parse(
            "".join(f"k{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 40)).replace(
                "*a0, *a0", "1, 2"
            ),
            "yaml",
            "bomb",
        )
