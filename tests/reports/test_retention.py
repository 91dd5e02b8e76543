"""Retention of stored reports (`retention:`, `envparity db prune`, the scheduler's daily
prune): old evaluations go, the latest N of each comparison and the current one stay, the
documents only they used go with them, and `diff`, `gate` and old snapshots are untouched."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from app import runtime
from app import scheduler as scheduler_mod
from app.alerts.evaluate import evaluating_scanner
from app.clock import utcnow
from app.config import RetentionConfig
from app.db.models import AlertEvent, ComparisonState, Document, Evaluation, Snapshot
from app.reports.retention import prune
from app.states import DeliveryStatus
from tests.support import REPO, FakeClock, Project

COMPARISONS = ("staging->production", "production->staging")


@dataclass(frozen=True)
class Stored:
    id: int
    comparison: str
    created_at: datetime
    report: str
    resources: str


def setup(project: Project, retention: str = "") -> None:
    """The bundled examples with a second comparison (the other way round), no max_age on the
    gate, and `retention`."""
    shutil.copytree(REPO / "examples", project.root, dirs_exist_ok=True)
    for leftover in project.root.glob("envparity.db*"):
        leftover.unlink()
    text = (
        project.config.read_text()
        .replace("comparisons:\n", "comparisons:\n  - {source: production, target: staging}\n")
        # the history's snapshots are days old: the gate judges them, not their age
        .replace("gate: {fail_on: warning, max_age: 1h}", "gate: {fail_on: warning}")
    )
    project.write_config(text + retention)


def history(project: Project, ages: list[float], now: datetime | None = None) -> datetime:
    """One evaluation of each comparison made `age` days before `now` for each age, oldest
    first: staging is scanned first, then production and staging by turns, on a FakeClock.
    Returns `now`."""
    now = now or utcnow()
    rt = runtime.load(project.config)
    clock = FakeClock(start=now - timedelta(days=ages[0]))
    rt.clock = clock
    try:
        scanner = evaluating_scanner(rt)
        assert scanner.scan("staging").status == "complete"  # production has none yet
        for turn, age in enumerate(ages):
            clock.advance((now - timedelta(days=age) - clock.now()).total_seconds())
            assert scanner.scan("production" if turn % 2 == 0 else "staging").status == "complete"
    finally:
        rt.close()
    return now


def read(project: Project) -> tuple[list[Stored], set[str], dict[str, int | None]]:
    """The stored evaluations (oldest first), the documents' hashes and the comparisons'
    current evaluations."""
    rt = runtime.load(project.config)
    try:
        with rt.sessions() as session:
            rows = session.execute(
                select(
                    Evaluation.id,
                    Evaluation.comparison,
                    Evaluation.created_at,
                    Evaluation.report,
                    Evaluation.resources,
                ).order_by(Evaluation.id)
            )
            stored = [Stored(*row) for row in rows]
            documents = set(session.scalars(select(Document.hash)))
            current = {
                row.comparison: row.evaluation_id
                for row in session.execute(
                    select(ComparisonState.comparison, ComparisonState.evaluation_id)
                )
            }
    finally:
        rt.close()
    return stored, documents, current


def ages_of(stored: list[Stored], comparison: str, now: datetime) -> list[int]:
    return [
        round((now - s.created_at) / timedelta(days=1))
        for s in stored
        if s.comparison == comparison
    ]


def counts(output: str) -> tuple[int, int]:
    """(stored reports, documents) a `db prune` says it deleted or would delete."""
    found = re.search(r"(\d+) stored report\(s\) and (\d+) document\(s\)", output)
    assert found, output
    return int(found[1]), int(found[2])


AGES = [200, 190, 180, 170, 160, 150, 40, 0]


@pytest.mark.parametrize(
    ("keep", "kept_ages"),
    [
        # keep 1: every evaluation older than 90 days goes but the current one (age 0); the
        # one of 40 days stays for its age, although it is not among the latest 1
        pytest.param(1, [40, 0], id="keep-1"),
        # keep 4: the latest four stay, 160 and 150 days old as they are
        pytest.param(4, [160, 150, 40, 0], id="keep-4"),
    ],
)
def test_prune_keeps_the_recent_the_latest_n_and_the_current(
    project: Project, keep: int, kept_ages: list[int]
) -> None:
    setup(project, f"retention: {{evaluations: 90d, keep_per_comparison: {keep}}}\n")
    now = history(project, AGES)
    before, documents_before, current_before = read(project)
    for comparison in COMPARISONS:
        assert ages_of(before, comparison, now) == AGES
    diff_before = project.invoke("diff", "staging", "production", "-f", "json")
    gate_before = project.invoke("gate", "staging", "production", "-f", "json")
    assert diff_before.returncode == gate_before.returncode == 1  # drift

    pruned = project.invoke("db", "prune")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr

    after, documents_after, current_after = read(project)
    for comparison in COMPARISONS:
        assert ages_of(after, comparison, now) == kept_ages
    assert current_after == current_before  # the current evaluations stay
    assert set(current_after.values()) <= {s.id for s in after}
    gone = [s for s in before if s not in after]
    assert counts(pruned.stdout) == (len(gone), len(documents_before - documents_after))
    assert len(gone) == 2 * (len(AGES) - len(kept_ages))
    # every report of a pruned evaluation left the database; every kept one's is there
    assert not {s.report for s in gone} & documents_after
    assert {d for s in after for d in (s.report, s.resources)} <= documents_after
    assert len(documents_after) < len(documents_before)

    # diff and gate answer as before, from the stored report
    diff_after = project.invoke("diff", "staging", "production", "-f", "json")
    assert diff_after.returncode == 1
    assert json.loads(diff_after.stdout) == json.loads(diff_before.stdout)
    gate_after = project.invoke("gate", "staging", "production", "-f", "json")
    assert gate_after.returncode == 1
    assert json.loads(gate_after.stdout)["status"] == json.loads(gate_before.stdout)["status"]

    # snapshots are not reports: the oldest ones still compare
    rt = runtime.load(project.config)
    with rt.sessions() as session:
        oldest = session.scalars(select(Snapshot.id).order_by(Snapshot.id).limit(2)).all()
    rt.close()
    old = project.invoke("diff", f"staging@{oldest[0]}", f"production@{oldest[1]}", "-f", "json")
    assert old.returncode == 1, old.stderr
    assert json.loads(old.stdout)["summary"]["unwaived"] > 0

    again = project.invoke("db", "prune")
    assert counts(again.stdout) == (0, 0)


def test_dry_run_says_what_would_go_and_deletes_nothing(project: Project) -> None:
    setup(project, "retention: {keep_per_comparison: 2}\n")
    history(project, AGES)
    before = read(project)

    dry = project.invoke("db", "prune", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would be deleted" in dry.stdout
    assert "nothing was deleted" in dry.stdout
    for comparison in COMPARISONS:
        assert comparison in dry.stdout  # each comparison's count is listed
    would = counts(dry.stdout)
    assert would[0] == 2 * 6  # six of the eight evaluations of each comparison are old
    assert would[1] > 0
    assert read(project) == before  # nothing at all changed

    real = project.invoke("db", "prune")
    assert "would" not in real.stdout
    assert counts(real.stdout) == would  # exactly what the dry run announced


def test_pending_alerts_keep_their_evaluation_and_delivered_ones_their_history(
    project: Project,
) -> None:
    setup(project, "retention: {keep_per_comparison: 1}\n")
    now = history(project, [200, 190, 180, 0])
    stored, _documents, _current = read(project)
    first, second = [s for s in stored if s.comparison == COMPARISONS[0]][:2]
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:
        for evaluation, status in ((first, DeliveryStatus.PENDING), (second, "delivered")):
            session.add(
                AlertEvent(
                    comparison=evaluation.comparison,
                    kind="drift.opened",
                    target="slack",
                    evaluation_id=evaluation.id,
                    payload='{"comparison": "staging->production", "items": []}',
                    items=1,
                    status=status,
                )
            )
    pruned = prune(rt.sessions, rt.config.model.retention, now)
    with rt.sessions() as session:
        events = session.execute(
            select(AlertEvent.status, AlertEvent.evaluation_id, AlertEvent.payload).order_by(
                AlertEvent.id
            )
        ).all()
        left = set(session.scalars(select(Evaluation.id)))
    rt.close()
    assert first.id in left  # the outbox still has work that names it
    assert second.id not in left
    assert [(e.status, e.evaluation_id) for e in events] == [
        ("pending", first.id),
        ("delivered", None),  # the event and its payload stay; only the link goes
    ]
    assert all("staging->production" in e.payload for e in events)
    assert pruned.evaluations == 2 * 3 - 1


def test_prune_in_small_batches_and_a_moved_current_evaluation(project: Project) -> None:
    setup(project, "retention: {keep_per_comparison: 1}\n")
    now = history(project, AGES)
    stored, documents, _current = read(project)
    oldest = stored[0]
    rt = runtime.load(project.config)
    with rt.sessions.begin() as session:  # a comparison whose state names an old evaluation
        session.execute(
            update(ComparisonState)
            .where(ComparisonState.comparison == oldest.comparison)
            .values(evaluation_id=oldest.id)
        )
    pruned = prune(rt.sessions, RetentionConfig(keep_per_comparison=1), now, batch=3)
    rt.close()
    after, documents_after, _ = read(project)
    assert oldest in after  # what a comparison's state points at is never deleted
    assert {s.id for s in after} == {oldest.id} | {
        s.id for s in stored if (now - s.created_at) < timedelta(days=90)
    }
    assert pruned.evaluations == len(stored) - len(after) == 2 * 6 - 1
    assert pruned.documents == len(documents - documents_after) > 0
    assert pruned.kept == len(after)


def test_a_bad_retention_is_refused_naming_file_line_and_key(project: Project) -> None:
    setup(project, "retention:\n  keep_per_comparison: 3\n  evaluations: 90s\n")
    lines = project.config.read_text().splitlines()
    line = lines.index("  evaluations: 90s") + 1
    result = project.invoke("db", "prune")
    assert result.returncode == 2
    assert f"envparity.yaml:{line}: retention.evaluations" in result.stderr
    assert "shorter than 1h" in result.stderr


# --------------------------------------------------------------------------- the scheduler


def test_the_scheduler_prunes_daily_on_its_clock(project: Project) -> None:
    setup(project, "retention: {evaluations: 30d, keep_per_comparison: 2}\n")
    now = history(project, [3, 2, 1, 0])
    rt = runtime.load(project.config)
    clock = FakeClock(start=now)
    rt.clock = clock
    jobs, leadership = scheduler_mod.build(rt)
    try:
        job = jobs.get_job(scheduler_mod.PRUNE_JOB)
        assert job is not None
        assert str(job.trigger).startswith("interval[1 day")
        # an interval's first prune comes soon after start, not a day later
        assert job.next_run_time - utcnow() <= timedelta(minutes=1)
        job.func()
        assert len(read(project)[0]) == 2 * 4  # all younger than 30 days: nothing goes
        clock.advance(timedelta(days=31).total_seconds())
        job.func()
        stored, _documents, current = read(project)
    finally:
        leadership.release()
        rt.close()
    for comparison in COMPARISONS:
        assert ages_of(stored, comparison, now) == [1, 0]  # the latest 2 of each
    assert set(current.values()) <= {s.id for s in stored}


@pytest.mark.parametrize(
    ("retention", "expected"),
    [
        pytest.param("retention: {schedule: null}\n", None, id="off"),
        pytest.param("retention: {schedule: '0 3 * * *'}\n", "cron[", id="cron"),
        pytest.param("retention: {schedule: 6h}\n", "interval[6:00:00", id="interval"),
    ],
)
def test_the_prune_schedule(project: Project, retention: str, expected: str | None) -> None:
    setup(project, retention)
    rt = runtime.load(project.config)
    jobs, leadership = scheduler_mod.build(rt)
    job = jobs.get_job(scheduler_mod.PRUNE_JOB)
    leadership.release()
    rt.close()
    if expected is None:
        assert job is None
    else:
        assert job is not None
        assert str(job.trigger).startswith(expected)


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_only_the_leader_prunes_on_postgresql(project: Project) -> None:
    setup(project, "retention: {keep_per_comparison: 1}\n")
    history(project, AGES)
    first, second = runtime.load(project.config), runtime.load(project.config)
    (leader_jobs, leader), (standby_jobs, standby) = (
        scheduler_mod.build(first),
        scheduler_mod.build(second),
    )
    try:
        assert leader.is_leader()
        standby_jobs.get_job(scheduler_mod.PRUNE_JOB).func()
        assert len(read(project)[0]) == 2 * len(AGES)  # the standby left them alone
        leader_jobs.get_job(scheduler_mod.PRUNE_JOB).func()
        assert len(read(project)[0]) == 2 * 2  # the current one and the one of 40 days
    finally:
        leader.release()
        standby.release()
        first.close()
        second.close()
