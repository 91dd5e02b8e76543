"""A long-running process keeps the sides its evaluations loaded (kept_sides) and makes
each comparison once however many ask for it at the same moment (InFlight): the reports it
stores must be exactly those a fresh process makes, also once a snapshot's sources were
rewritten under the same id (`db rescrub`)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from app import runtime
from app.alerts.evaluate import Evaluator
from app.diff.model import DiffResult, Side
from app.reports.service import InFlight, SideCache, compare_refs, kept_sides, side_of
from app.snapshots import service
from app.snapshots.repository import SnapshotRepository
from app.states import SnapshotStatus
from tests.support import Project

CONFIG = """
environments:
  staging:
    vars: {env: staging}
  production:
    vars: {env: production}
comparisons:
  - {source: staging, target: production}
"""


def document(env: str, pool: int, replicas: int, taken: str) -> dict[str, Any]:
    return {
        "taken_at": taken,
        "sources": [{"name": "deploy", "type": "push"}],
        "resources": [
            {
                "source": "deploy",
                "category": "config",
                "resource_type": "service",
                "key": f"{name}-{env}",
                "attributes": {
                    "host": f"{name}.{env}.internal",
                    "pool": pool if name == "api" else 5,
                    "replicas": replicas,
                },
            }
            for name in ("api", "web", "worker")
        ],
    }


def items_of(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (i["key"], i["path"], i["change"], json.dumps(i["left"]), json.dumps(i["right"]))
        for i in report["items"]
    )


def stored_items(rt: runtime.Runtime) -> list[tuple[Any, ...]]:
    with rt.sessions.begin() as session:
        digest = session.execute(
            text("SELECT report FROM evaluations ORDER BY id DESC LIMIT 1")
        ).scalar_one()
        body = SnapshotRepository(session).documents.get([digest])[digest]
    return items_of(json.loads(body))


def test_kept_sides_give_the_reports_a_fresh_process_gives(project: Project) -> None:
    project.write_config(CONFIG)
    rt = runtime.load(project.config)
    evaluator = Evaluator.of(rt)

    def push(env: str, pool: int, replicas: int, minute: int) -> None:
        taken = f"2026-12-04T10:{minute:02d}:00Z"
        with rt.sessions.begin() as session:
            service.push(session, rt.config, env, document(env, pool, replicas, taken), rt.redactor)
        evaluator.after_snapshot(env)

    push("staging", 10, 2, 0)
    push("production", 20, 2, 1)
    assert stored_items(rt) == [
        ("api-{env}", "pool", "changed", "10", "20"),
    ]
    assert len(kept_sides(rt).sides) == 2  # both sides kept for the next evaluation
    # Production changes twice; staging's side is the one kept from before.
    push("production", 20, 3, 2)
    push("production", 10, 3, 3)
    kept = stored_items(rt)
    assert kept == [
        (f"{name}-{{env}}", "replicas", "changed", "2", "3") for name in ("api", "web", "worker")
    ]
    rt.close()
    fresh = runtime.load(project.config)
    with fresh.sessions.begin() as session:
        report = compare_refs(session, fresh.config, "staging", "production", datetime.now(UTC))
    assert items_of(report.as_json()) == kept
    fresh.close()


def test_a_side_whose_sources_were_rewritten_is_loaded_again(project: Project) -> None:
    project.write_config(CONFIG)
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        old, new = (
            service.push(session, rt.config, "staging", document("staging", *d), rt.redactor)
            for d in ((10, 2, "2026-12-04T10:00:00Z"), (30, 4, "2026-12-04T10:05:00Z"))
        )
    cache = SideCache()

    def side(snapshot_id: int) -> Side:
        with rt.sessions.begin() as session:
            repo = SnapshotRepository(session)
            return side_of(repo, rt.config, repo.snapshot(snapshot_id), True, cache)

    first = side(old[0])
    assert {r.key for r in first.resources} == {"api-staging", "web-staging", "worker-staging"}
    # What `db rescrub` does: the same snapshot id, its source under another manifest.
    with rt.sessions.begin() as session:
        session.execute(
            text(
                "UPDATE snapshot_sources SET manifest = "
                "(SELECT manifest FROM snapshot_sources WHERE snapshot_id = :new) "
                "WHERE snapshot_id = :old"
            ),
            {"new": new[0], "old": old[0]},
        )
    again = side(old[0])
    assert again is not first
    assert [r.hash for r in again.resources] == [r.hash for r in side(new[0]).resources]
    assert [r.hash for r in again.resources] != [r.hash for r in first.resources]
    rt.close()


def make_side(environment: str, resources: int, snapshot_id: int) -> Side:
    from app.diff.model import SideResource

    return Side(
        environment=environment,
        snapshot_id=snapshot_id,
        taken_at=None,
        status=SnapshotStatus.COMPLETE,
        vars={},
        sources={},
        resources=[SideResource("s", "config", "t", str(i), None) for i in range(resources)],
    )


def test_the_side_cache_is_bounded_by_count_and_by_resources() -> None:
    cache = SideCache(size=3, max_resources=100)
    for n in range(4):
        cache.put(n, make_side("a", 10, n))
    assert list(cache.sides) == [1, 2, 3]  # the least recently used went first
    assert cache.get(1) is not None
    cache.put(4, make_side("a", 85, 4))  # 10 + 10 + 85 > 100
    assert list(cache.sides) == [1, 4]
    cache.put(5, make_side("a", 500, 5))  # larger than the bound alone: kept, alone
    assert list(cache.sides) == [5]
    # What the engine normalized and kept with a side counts, ten rows a document.
    cache.put(6, make_side("a", 10, 6))
    cache.put(7, make_side("a", 10, 7))
    assert list(cache.sides) == [6, 7]
    side = cache.get(6)
    assert side is not None
    side.normalized["vars"] = {("hash", str(n)): None for n in range(9)}  # 10 + 90 rows
    assert cache.get(7) is not None
    assert list(cache.sides) == [7]


def result() -> DiffResult:
    return DiffResult(comparison="a->b", items=[], unknown=[], compared=0, differing=0)


def test_one_comparison_is_made_once_for_everyone_waiting_on_it() -> None:
    judging: InFlight[DiffResult] = InFlight()
    started, release = threading.Event(), threading.Event()
    made: list[DiffResult] = []

    def make() -> DiffResult:
        started.set()
        release.wait(10)
        made.append(result())
        return made[-1]

    answers: list[DiffResult] = []
    first = threading.Thread(target=lambda: answers.append(judging.result(("k",), make)))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=lambda: answers.append(judging.result(("k",), make)))
    second.start()
    other = judging.result(("other",), result)  # another key is not held up
    release.set()
    first.join(10)
    second.join(10)
    assert len(made) == 1
    assert answers[0] is made[0]
    assert answers[1] is made[0]
    assert other is not made[0]
    assert judging.pending == {}


def test_a_failed_comparison_fails_for_everyone_waiting_on_it() -> None:
    judging: InFlight[DiffResult] = InFlight()
    started, release = threading.Event(), threading.Event()

    def fails() -> DiffResult:
        started.set()
        release.wait(10)
        raise RuntimeError("database gone")

    errors: list[str] = []

    def ask() -> None:
        try:
            judging.result(("k",), fails)
        except RuntimeError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=ask)]
    threads[0].start()
    assert started.wait(10)
    threads.append(threading.Thread(target=ask))
    threads[1].start()
    release.set()
    for thread in threads:
        thread.join(10)
    assert errors == ["database gone", "database gone"]
    # Nothing is remembered of it: the next ask makes the comparison anew.
    assert judging.result(("k",), result).comparison == "a->b"
