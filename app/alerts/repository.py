"""Every query of alerting: stored evaluations as the dashboard and metrics read them, open
drift and the outbox (the comparisons' state and its lock: app/reports/repository.py)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.orm import Session

from app.db.models import AlertEvent, ComparisonState, Evaluation, OpenDrift
from app.errors import Conflict, NotFound
from app.snapshots.store import batched
from app.states import DeliveryStatus, Severity

# An open drift row's fingerprint, identity (category, resource type, key) and times.
OpenMark = Row[str, str, str, str, datetime, datetime | None]


def severity_counts(evaluation: Evaluation) -> dict[Severity, int]:
    """An evaluation's unwaived drift items by severity (a column each), worst first."""
    columns = {
        Severity.CRITICAL: evaluation.critical,
        Severity.WARNING: evaluation.warning,
        Severity.INFO: evaluation.info,
    }
    return {severity: columns[severity] for severity in Severity.worst_first()}


class AlertRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # ------------------------------------------------------------------ evaluations

    def current_evaluations(self) -> list[Evaluation]:
        """Each comparison's last evaluation."""
        return list(
            self.session.scalars(
                select(Evaluation).join(
                    ComparisonState, ComparisonState.evaluation_id == Evaluation.id
                )
            )
        )

    def evaluations_of_snapshots(self, snapshot_ids: Sequence[int]) -> list[Evaluation]:
        """Evaluations judged from any of these snapshots (an environment's timeline)."""
        if not snapshot_ids:
            return []
        ids = list(snapshot_ids)
        return list(
            self.session.scalars(
                select(Evaluation)
                .where(Evaluation.left_snapshot_id.in_(ids) | Evaluation.right_snapshot_id.in_(ids))
                .order_by(Evaluation.id)
            )
        )

    # ------------------------------------------------------------------ open drift

    def open_drift(
        self, comparison: str, fingerprints: Collection[str] | None = None
    ) -> dict[str, OpenDrift]:
        """The comparison's open drift rows (only these fingerprints', if given)."""
        query = select(OpenDrift).where(OpenDrift.comparison == comparison)
        if fingerprints is None:
            return {row.fingerprint: row for row in self.session.scalars(query)}
        found: dict[str, OpenDrift] = {}
        for batch in batched(sorted(fingerprints)):
            rows = self.session.scalars(query.where(OpenDrift.fingerprint.in_(batch)))
            found.update((row.fingerprint, row) for row in rows)
        return found

    def open_marks(self, comparison: str) -> dict[str, OpenMark]:
        """Each open fingerprint's identity and times, without loading whole rows (an
        evaluation compares thousands of them under the comparison's lock)."""
        rows = self.session.execute(
            select(
                OpenDrift.fingerprint,
                OpenDrift.category,
                OpenDrift.resource_type,
                OpenDrift.key,
                OpenDrift.opened_at,
                OpenDrift.reminded_at,
            ).where(OpenDrift.comparison == comparison)
        )
        return {row.fingerprint: row for row in rows}

    def open_rows(self, rows: list[dict[str, Any]]) -> None:
        """New open drift, as column values: one executemany, not thousands of ORM objects
        (a first evaluation may open every difference there is, under the lock)."""
        for batch in batched(rows):
            self.session.execute(insert(OpenDrift), batch)

    def close_rows(self, rows: list[OpenDrift]) -> None:
        for row in rows:
            self.session.delete(row)

    # ------------------------------------------------------------------ outbox

    def add_events(self, events: list[AlertEvent]) -> None:
        self.session.add_all(events)
        self.session.flush()

    def event(self, event_id: int) -> AlertEvent:
        event = self.session.get(AlertEvent, event_id)
        if event is None:
            raise NotFound(f"no alert event #{event_id}")
        return event

    def events(self, status: DeliveryStatus | None = None, limit: int = 100) -> list[AlertEvent]:
        query = select(AlertEvent).order_by(AlertEvent.id.desc()).limit(limit)
        if status:
            query = query.where(AlertEvent.status == status)
        return list(self.session.scalars(query))

    def counts(self) -> dict[tuple[str, str], int]:
        """Outbox events by (target, status)."""
        rows = self.session.execute(
            select(AlertEvent.target, AlertEvent.status, func.count()).group_by(
                AlertEvent.target, AlertEvent.status
            )
        )
        return {(target, status): count for target, status, count in rows}

    def due(self, now: datetime, limit: int = 50) -> list[AlertEvent]:
        """Pending events, oldest first, that nobody holds a claim on."""
        return list(
            self.session.scalars(
                select(AlertEvent)
                .where(
                    AlertEvent.status == DeliveryStatus.PENDING,
                    (AlertEvent.claimed_until.is_(None)) | (AlertEvent.claimed_until < now),
                )
                .order_by(AlertEvent.id)
                .limit(limit)
            )
        )

    def next_due(self) -> datetime | None:
        return self.session.scalar(
            select(func.min(AlertEvent.next_attempt_at)).where(
                AlertEvent.status == DeliveryStatus.PENDING
            )
        )

    def pending(self) -> int:
        return (
            self.session.scalar(
                select(func.count())
                .select_from(AlertEvent)
                .where(AlertEvent.status == DeliveryStatus.PENDING)
            )
            or 0
        )

    def claim(self, event_id: int, now: datetime, hold: timedelta) -> bool:
        """Takes an event for sending; False if another deliverer holds it or it is done.
        One UPDATE with its condition: atomic on SQLite and PostgreSQL alike."""
        result = self.session.execute(
            update(AlertEvent)
            .where(
                AlertEvent.id == event_id,
                AlertEvent.status == DeliveryStatus.PENDING,
                (AlertEvent.claimed_until.is_(None)) | (AlertEvent.claimed_until < now),
            )
            .values(claimed_until=now + hold)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def thread_root(self, comparison: str, target: str, prefix: str) -> str | None:
        """The first delivered bot message of a comparison on a target whose reference
        starts with `prefix` (its channel): `channel:ts`."""
        return self.session.scalar(
            select(AlertEvent.remote_ref)
            .where(
                AlertEvent.comparison == comparison,
                AlertEvent.target == target,
                AlertEvent.status == DeliveryStatus.DELIVERED,
                AlertEvent.remote_ref.startswith(prefix, autoescape=True),
            )
            .order_by(AlertEvent.id)
            .limit(1)
        )

    def retry(self, event_id: int, now: datetime) -> AlertEvent:
        event = self.event(event_id)
        if event.status != DeliveryStatus.FAILED:
            raise Conflict(
                f"alert event #{event_id} is {event.status}: only failed ones are retried"
            )
        event.status = DeliveryStatus.PENDING
        event.attempts = 0
        event.next_attempt_at = now
        event.claimed_until = None
        return event
