"""A stored snapshot that cannot be evaluated (stored by an older version, before the limits)
is marked once and not retried forever; newer snapshots are judged as usual."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app import runtime
from app.alerts.evaluate import Evaluator
from app.db.models import ComparisonState
from app.snapshots.repository import SnapshotRepository, SourceRecord
from tests.support import Project

CONFIG = """
environments:
  staging: {}
  production: {}
comparisons:
  - {source: staging, target: production}
"""


def deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": value}
    return value


def store(rt: runtime.Runtime, env: str, attributes: dict[str, Any], hour: int) -> int:
    record = SourceRecord(
        "agent", "push", "ok", None, None, [("config", "file", "app", attributes)]
    )
    with rt.sessions.begin() as session:
        repo = SnapshotRepository(session)
        taken_at = datetime(2026, 11, 22, hour, tzinfo=UTC)
        return repo.add_snapshot(repo.ensure_environment(env), taken_at, "push", [record]).id


def test_a_poison_snapshot_is_marked_once_and_not_retried(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    project.write_config(CONFIG)
    rt = runtime.load(project.config)
    try:
        # Deeper than the interpreter's recursion: what an older version let in.
        store(rt, "staging", {"v": deep(700)}, 4)
        store(rt, "production", {"v": 1}, 4)
        evaluator = Evaluator(rt.config, rt.sessions)
        assert evaluator.catch_up() == []
        failures = [r for r in caplog.records if "not tried again" in r.getMessage()]
        assert len(failures) == 1
        with rt.sessions() as session:
            state = session.get(ComparisonState, "staging->production")
            assert state is not None
            assert state.failed is not None
        caplog.clear()
        assert evaluator.catch_up() == []  # the same snapshots: not tried again
        assert not [r for r in caplog.records if "failed" in r.getMessage()]
        # A new snapshot replaces the poison one: judged as usual, the mark cleared.
        store(rt, "staging", {"v": 2}, 5)
        outcomes = evaluator.catch_up()
        assert [o.comparison for o in outcomes] == ["staging->production"]
        with rt.sessions() as session:
            state = session.get(ComparisonState, "staging->production")
            assert state is not None
            assert state.failed is None
    finally:
        rt.close()
