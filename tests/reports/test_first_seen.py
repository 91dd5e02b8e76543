"""`first_seen` is recorded once per difference, even when two writers record it at once
(a scan's evaluation and a gate's diff of the same comparison)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import DriftSeen
from app.diff.model import DiffResult, DriftItem
from app.reports.service import record_first_seen

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def result(count: int) -> DiffResult:
    items = [
        DriftItem("config", "file", f"app-{i}", "size", "changed", 1, 2, fingerprint=f"{i:064x}")
        for i in range(count)
    ]  # fmt: skip
    return DiffResult("staging->production", items, [], count, count)


def test_two_writers_recording_the_same_new_drift_both_succeed(
    sessions: sessionmaker[Session],
) -> None:
    writers, rounds, failures = 4, 3, []
    for round_ in range(rounds):
        barrier = threading.Barrier(writers)
        seen = result(1500 * (round_ + 1))  # new fingerprints every round

        def record(
            offset: int, seen: DiffResult = seen, barrier: threading.Barrier = barrier
        ) -> None:
            try:
                with sessions() as session:
                    barrier.wait()
                    record_first_seen(session, seen, T0 + timedelta(minutes=offset))
                    session.commit()
            except Exception as exc:  # every failure is the test's finding
                failures.append(exc)

        threads = [threading.Thread(target=record, args=(i,)) for i in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(DriftSeen)) == 1500 * rounds
        assert session.scalar(select(func.min(DriftSeen.first_seen))) == T0


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
