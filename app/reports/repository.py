"""Every query of the reports: when each difference was first and last seen, the comparisons'
state (and its lock) and the evaluations stored from them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from app.db.models import ComparisonState, DriftSeen, Evaluation
from app.db.upsert import dialect_insert, insert_or_ignore
from app.diff.model import DiffResult
from app.snapshots.store import batched


class EvaluationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def state(self, comparison: str) -> ComparisonState | None:
        """The comparison's state row, read without a lock."""
        return self.session.get(ComparisonState, comparison)

    def lock(self, comparison: str) -> ComparisonState:
        """The comparison's state row, write-locked until the transaction ends: the first
        write of the transaction, so SQLite takes its write lock here and PostgreSQL the
        row's lock; two evaluations of one comparison never interleave."""
        if self.session.get(ComparisonState, comparison) is None:
            # Two first evaluations of a comparison (its two environments scanned at once)
            # may both find no row: the second insert is a no-op, and the update waits.
            self.session.execute(
                insert_or_ignore(self.session, ComparisonState),
                {"comparison": comparison, "version": 0},
            )
        self.session.execute(
            update(ComparisonState)
            .where(ComparisonState.comparison == comparison)
            .values(version=ComparisonState.version + 1)
        )
        state = self.session.get(ComparisonState, comparison, populate_existing=True)
        assert state is not None
        return state

    def add(self, evaluation: Evaluation) -> Evaluation:
        self.session.add(evaluation)
        self.session.flush()
        return evaluation


def record_first_seen(session: Session, result: DiffResult, observed_at: datetime) -> None:
    """Keeps, per fingerprint, the earliest and latest data in which the difference stood.

    Several writers (a scan's evaluation, a gate's diff, an older snapshot compared
    afterwards) may record the same difference at once, so the earliest and latest are
    kept by the database in one upsert rather than read, compared and written back here:
    whichever commits last cannot put a later `first_seen` over an earlier one. Rows whose
    span already covers `observed_at` are not written at all (the span only widens).
    """
    items = {i.fingerprint: i for i in result.items}
    if not items:
        return
    fingerprints = sorted(items)
    known = _seen_spans(session, result.comparison, fingerprints)
    stale = [
        f for f in fingerprints if f not in known or not known[f][0] <= observed_at <= known[f][1]
    ]
    if stale:
        insert = dialect_insert(session, DriftSeen)
        statement = insert.on_conflict_do_update(
            index_elements=[DriftSeen.comparison, DriftSeen.fingerprint],
            set_={
                "first_seen": case(
                    (insert.excluded.first_seen < DriftSeen.first_seen, insert.excluded.first_seen),
                    else_=DriftSeen.first_seen,
                ),
                "last_seen": case(
                    (insert.excluded.last_seen > DriftSeen.last_seen, insert.excluded.last_seen),
                    else_=DriftSeen.last_seen,
                ),
            },
        )
        rows = [
            {
                "comparison": result.comparison,
                "fingerprint": f,
                "first_seen": observed_at,
                "last_seen": observed_at,
            }
            for f in stale  # in key order, so two writers lock PostgreSQL rows alike
        ]
        for batch in batched(rows):
            session.execute(statement, batch)
        known.update(_seen_spans(session, result.comparison, stale))
    for fingerprint, item in items.items():
        item.first_seen = known[fingerprint][0]


def _seen_spans(
    session: Session, comparison: str, fingerprints: list[str]
) -> dict[str, tuple[datetime, datetime]]:
    """Per fingerprint, the stored (first_seen, last_seen), read from the database."""
    known: dict[str, tuple[datetime, datetime]] = {}
    for batch in batched(fingerprints):
        rows = session.execute(
            select(DriftSeen.fingerprint, DriftSeen.first_seen, DriftSeen.last_seen).where(
                DriftSeen.comparison == comparison, DriftSeen.fingerprint.in_(batch)
            )
        )
        known.update({row[0]: (row[1], row[2]) for row in rows})
    return known
