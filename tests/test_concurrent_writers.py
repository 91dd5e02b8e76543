"""Writers doing the same write at once all succeed, and none undoes another: a scan's
evaluation and a gate's diff recording the same difference (each keeps the earliest
first_seen and the latest last_seen any of them saw), two evaluations of a comparison that
has no state row yet (its two environments scanned at the same moment)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import ComparisonState, DriftSeen
from app.diff.model import DiffResult, DriftItem
from app.reports.repository import EvaluationRepository, record_first_seen

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
WRITERS = 4


def at_once(sessions: sessionmaker[Session], write: Callable[[Session, int], None]) -> None:
    """Runs `write` in WRITERS threads, each in its own transaction, released together."""
    barrier, failures = threading.Barrier(WRITERS), []

    def run(index: int) -> None:
        try:
            with sessions() as session:
                barrier.wait()
                write(session, index)
                session.commit()
        except Exception as exc:  # every failure is the test's finding
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def result(count: int) -> DiffResult:
    items = [
        DriftItem("config", "file", f"app-{i}", "size", "changed", 1, 2, fingerprint=f"{i:064x}")
        for i in range(count)
    ]  # fmt: skip
    return DiffResult("staging->production", items, [], count, count)


@pytest.mark.slow
def test_writers_recording_the_same_drift_at_once_keep_the_earliest_first_seen(
    sessions: sessionmaker[Session],
) -> None:
    for round_ in range(3):
        seen = result(1500 * (round_ + 1))  # 1,500 new fingerprints next to the known ones
        at_once(
            sessions,
            lambda session, i, seen=seen: record_first_seen(
                session, seen, T0 + timedelta(minutes=i)
            ),
        )
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(DriftSeen)) == 4500
        # Whichever writer commits last, every difference keeps the earliest and the latest
        # time any of them saw it: no later first_seen is written over an earlier one.
        spans = session.execute(select(DriftSeen.first_seen, DriftSeen.last_seen)).all()
        assert set(spans) == {(T0, T0 + timedelta(minutes=WRITERS - 1))}


def test_first_seen_stays_the_earliest_and_last_seen_moves_on(
    sessions: sessionmaker[Session],
) -> None:
    seen = result(3)
    with sessions() as session:
        record_first_seen(session, seen, T0 + timedelta(hours=1))
        session.commit()
    later = result(3)
    with sessions() as session:
        record_first_seen(session, later, T0 + timedelta(hours=5))
        session.commit()
    earlier = result(3)
    with sessions() as session:
        record_first_seen(session, earlier, T0)  # an older snapshot compared afterwards
        session.commit()
    assert {i.first_seen for i in later.items} == {T0 + timedelta(hours=1)}
    assert {i.first_seen for i in earlier.items} == {T0}
    with sessions() as session:
        rows = session.scalars(select(DriftSeen)).all()
        assert {(r.first_seen, r.last_seen) for r in rows} == {(T0, T0 + timedelta(hours=5))}


def test_first_evaluations_of_a_new_comparison_at_once_each_take_the_lock(
    sessions: sessionmaker[Session],
) -> None:
    for round_ in range(5):
        name = f"staging->production-{round_}"  # no state row yet
        at_once(sessions, lambda session, _i, name=name: EvaluationRepository(session).lock(name))
        with sessions() as session:
            state = session.get(ComparisonState, name)
            assert state is not None
            assert state.version == WRITERS  # each held it once
