"""The runner isolates each source: timeouts, unexpected errors and duplicates fail only it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors import registry
from collectors.base import FetchContext, Resource, SourceOptions, SourceType
from collectors.runner import run_source
from tests.support import make_redactor

release = threading.Event()


class Behaviour(SourceOptions):
    behaviour: str


class Scripted(SourceType[Behaviour]):
    """A test-only source type whose fetch does what its options say."""

    type_name = "test.scripted"
    Options = Behaviour
    summary = "test only"

    def fetch(self, options: Behaviour, ctx: FetchContext) -> Any:
        if options.behaviour == "hang":
            release.wait(30)
        if options.behaviour == "bug":
            raise KeyError("token=abc123")
        return options.behaviour

    def normalize(self, raw: Any, options: Behaviour) -> list[Resource]:
        n = 2 if raw == "duplicate" else 1
        return [
            Resource("config", "test", "same" if raw == "duplicate" else str(i), {"password": "p"})
            for i in range(n)
        ]


@pytest.fixture(autouse=True)
def scripted() -> Iterator[None]:
    registry.register(Scripted)
    yield
    registry._REGISTRY.pop("test.scripted")
    release.set()


def run(behaviour: str, timeout: float = 5) -> Any:
    options = Behaviour(type="test.scripted", name="s", behaviour=behaviour, timeout=timeout)
    ctx = FetchContext("staging", Path("."))
    return run_source(options, ctx, make_redactor())


@pytest.mark.slow
def test_hung_fetch_is_abandoned_after_its_timeout() -> None:
    started = time.monotonic()
    outcome = run("hang", timeout=0.2)
    assert time.monotonic() - started < 5
    assert outcome.status == "failed"
    assert outcome.error == "timed out after 0.2s"


def test_unexpected_exception_fails_the_source_with_a_scrubbed_message() -> None:
    outcome = run("bug")
    assert outcome.status == "failed"
    assert outcome.error is not None
    assert outcome.error.startswith("unexpected KeyError")
    assert "abc123" not in outcome.error


def test_duplicate_identity_fails_the_source() -> None:
    outcome = run("duplicate")
    assert outcome.status == "failed"
    assert "'same' twice" in (outcome.error or "")


def test_resources_leave_the_runner_redacted() -> None:
    outcome = run("ok")
    assert outcome.status == "ok"
    assert outcome.resources[0].attributes["password"].startswith("secret:hmac-sha256:")


def test_sources_reuse_their_threads_and_a_hung_one_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One source after another runs in the same thread; a source that hung past its timeout
    keeps its thread, and the next source gets another (never queued behind the hung one)."""
    from collectors import runner
    from collectors.runner import SourceTimeout, _call_with_timeout

    monkeypatch.setattr(runner, "TIMEOUT_GRACE", 0.0)

    first = _call_with_timeout(threading.get_ident, 5)
    assert _call_with_timeout(threading.get_ident, 5) == first
    release = threading.Event()
    hung: list[int] = []

    def hang() -> None:
        hung.append(threading.get_ident())
        release.wait(10)

    with pytest.raises(SourceTimeout):
        _call_with_timeout(hang, 0.05)
    try:
        after = _call_with_timeout(threading.get_ident, 5)
        assert hung
        assert after != hung[0]
    finally:
        release.set()
