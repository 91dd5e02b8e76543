"""Retention of stored reports: the evaluations past the policy (`retention:` in
envparity.yaml) are deleted in batches, oldest first, then the documents nothing refers to
any more (their reports and compared-resources lists) go with `collect_garbage`.

What always stays, whatever its age: the latest `keep_per_comparison` evaluations of each
comparison, the one a comparison's state points at (what `diff`, the gate and the dashboard
serve), and any that a pending alert event names (the outbox's work in flight). A delivered
or failed alert event keeps its row and its payload, which holds everything it says; only
its link to a pruned evaluation is cleared.

The job owns its transactions, as `db rescrub` does: one per batch, so SQLite's write lock
is held a short while at a time, and the last batch collects the garbage in its own
transaction, with the evaluators held off on PostgreSQL (a table lock on comparison_state,
which every evaluation writes first) so that no report document can be reused by a new
evaluation at the moment it is found unreferenced. A dry run does all of it in one
transaction and rolls it back: what it reports is exactly what a real run would delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import RetentionConfig
from app.db.models import AlertEvent, ComparisonState, Evaluation
from app.snapshots.store import batched, collect_garbage
from app.states import DeliveryStatus

# Evaluations deleted per transaction: small enough that SQLite's write lock is never held
# long, and well under every database's limit of bound parameters.
BATCH = 1000


@dataclass(frozen=True)
class Doomed:
    """A comparison's evaluations past the policy: how many, and made when."""

    comparison: str
    ids: list[int]
    oldest: datetime
    newest: datetime

    @property
    def count(self) -> int:
        return len(self.ids)


@dataclass
class Pruned:
    """What a prune deleted (or, on a dry run, would delete)."""

    cutoff: datetime  # evaluations made before this are past the age limit
    keep_per_comparison: int
    dry_run: bool
    comparisons: list[Doomed] = field(default_factory=list)
    evaluations: int = 0
    documents: int = 0
    kept: int = 0  # evaluations left once it is done


def _current() -> Select[int | None]:
    return select(ComparisonState.evaluation_id).where(ComparisonState.evaluation_id.is_not(None))


def _pending() -> Select[int | None]:
    return select(AlertEvent.evaluation_id).where(
        AlertEvent.evaluation_id.is_not(None), AlertEvent.status == DeliveryStatus.PENDING
    )


def prunable(session: Session, policy: RetentionConfig, now: datetime) -> list[Doomed]:
    """The evaluations past the policy as of `now`, by comparison, oldest first."""
    cutoff = now - policy.evaluations
    out: list[Doomed] = []
    names = session.scalars(
        select(Evaluation.comparison).distinct().order_by(Evaluation.comparison)
    )
    for comparison in list(names):
        # The N-th newest evaluation of the comparison: it and the newer ones stay.
        boundary = session.scalar(
            select(Evaluation.id)
            .where(Evaluation.comparison == comparison)
            .order_by(Evaluation.id.desc())
            .offset(policy.keep_per_comparison - 1)
            .limit(1)
        )
        if boundary is None:
            continue
        rows = session.execute(
            select(Evaluation.id, Evaluation.created_at)
            .where(
                Evaluation.comparison == comparison,
                Evaluation.id < boundary,
                Evaluation.created_at < cutoff,
                Evaluation.id.not_in(_current()),
                Evaluation.id.not_in(_pending()),
            )
            .order_by(Evaluation.id)
        ).all()
        if rows:
            made = [row.created_at for row in rows]
            out.append(Doomed(comparison, [row.id for row in rows], min(made), max(made)))
    return out


def _delete(session: Session, ids: Sequence[int]) -> int:
    """Deletes these evaluations, but none that became current or pending meanwhile; the
    delivered and failed alert events that named them keep everything but the link."""
    batch = list(ids)
    session.execute(
        update(AlertEvent)
        .where(
            AlertEvent.evaluation_id.in_(batch),
            AlertEvent.evaluation_id.not_in(_current()),
            AlertEvent.status != DeliveryStatus.PENDING,
        )
        .values(evaluation_id=None)
    )
    result = session.execute(
        delete(Evaluation).where(
            Evaluation.id.in_(batch),
            Evaluation.id.not_in(_current()),
            Evaluation.id.not_in(_pending()),
        )
    )
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def _hold_evaluators(session: Session) -> None:
    """PostgreSQL: no evaluation stores a report until this transaction ends, and those under
    way finish first (each writes its comparison_state row before anything else). SQLite
    needs nothing: the transaction's first delete took the database's one write lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE comparison_state IN SHARE ROW EXCLUSIVE MODE"))


def _count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Evaluation)) or 0)


def prune(
    sessions: sessionmaker[Session],
    policy: RetentionConfig,
    now: datetime,
    *,
    dry_run: bool = False,
    batch: int = BATCH,
) -> Pruned:
    """Deletes the evaluations past `policy` as of `now` and the documents left unreferenced;
    with `dry_run`, the same in one transaction that is rolled back."""
    pruned = Pruned(now - policy.evaluations, policy.keep_per_comparison, dry_run)
    if dry_run:
        with sessions() as session:
            try:
                pruned.comparisons = prunable(session, policy, now)
                for part in batched(_ids(pruned), batch):
                    pruned.evaluations += _delete(session, part)
                if pruned.evaluations:
                    pruned.documents = collect_garbage(session)
                pruned.kept = _count(session)
            finally:
                session.rollback()
        return pruned
    with sessions.begin() as session:
        pruned.comparisons = prunable(session, policy, now)
        pruned.kept = _count(session)
    parts = list(batched(_ids(pruned), batch))
    for number, part in enumerate(parts, start=1):
        last = number == len(parts)
        with sessions.begin() as session:
            if last:
                _hold_evaluators(session)
            pruned.evaluations += _delete(session, part)
            if last:
                pruned.documents = collect_garbage(session)
                pruned.kept = _count(session)
    return pruned


def _ids(pruned: Pruned) -> list[int]:
    return sorted(i for doomed in pruned.comparisons for i in doomed.ids)
