"""All queries on environments, scans and snapshots; the caller's unit of work commits."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, contains_eager, selectinload

from app.clock import utcnow
from app.db.models import (
    AlertEvent,
    Baseline,
    ComparisonState,
    EnvironmentRow,
    Evaluation,
    Scan,
    Snapshot,
    SnapshotSource,
)
from app.db.types import MAX_ID
from app.errors import NotFound, ScanInProgress
from app.snapshots.store import (
    DocumentStore,
    Encoded,
    InMemory,
    Staged,
    StoredResource,
    encode,
)

if TYPE_CHECKING:
    from app.snapshots.forms import EnvironmentForms
from app.states import ScanStatus, SnapshotOrigin, SnapshotStatus, SourceStatus
from collectors.base import CATEGORIES

# A running scan whose heartbeat is older than this is taken for dead, wherever it ran.
STALE_SCAN_AFTER = timedelta(minutes=30)


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class SourceRecord:
    """One source's outcome, ready to be stored."""

    name: str
    type: str
    status: SourceStatus
    error: str | None
    duration_ms: int | None
    resources: list[tuple[str, str, str, dict[str, object]]]
    census: dict[str, Any] | None = None  # which paths were hashed by which rule
    # A push's resources, encoded as they were read (then `resources` is empty).
    staged: Staged | None = None

    @cached_property
    def encoded(self) -> list[Encoded]:
        """The resources with their canonical documents and hashes (worked out once)."""
        return encode(self.resources)

    @property
    def stored(self) -> Staged:
        return self.staged if self.staged is not None else InMemory(self.encoded)


_NEWER = aliased(Snapshot)
# Per environment named, its latest snapshot: one index lookup each (by environment and time).
_LATEST_OF = (
    select(Snapshot)
    .join(
        EnvironmentRow,
        Snapshot.id
        == select(_NEWER.id)
        .where(_NEWER.environment_id == EnvironmentRow.id)
        .order_by(_NEWER.taken_at.desc(), _NEWER.id.desc())
        .limit(1)
        .correlate(EnvironmentRow)
        .scalar_subquery(),
    )
    .where(EnvironmentRow.name.in_(bindparam("names", expanding=True)))
    .options(selectinload(Snapshot.sources), contains_eager(Snapshot.environment))
)


class SnapshotRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.documents = DocumentStore(session)

    # ----------------------------------------------------------------- environments
    def environment(self, name: str) -> EnvironmentRow | None:
        return self.session.scalar(select(EnvironmentRow).where(EnvironmentRow.name == name))

    def ensure_environment(self, name: str) -> EnvironmentRow:
        row = self.environment(name)
        if row is not None:
            return row
        try:
            with self.session.begin_nested():
                row = EnvironmentRow(name=name)
                self.session.add(row)
        except IntegrityError:  # created by another process just now
            row = self.environment(name)
            assert row is not None
        return row

    # ----------------------------------------------------------------- snapshots
    def add_snapshot(
        self,
        environment: EnvironmentRow,
        taken_at: datetime,
        origin: SnapshotOrigin,
        sources: list[SourceRecord],
        forms: EnvironmentForms | None = None,
    ) -> Snapshot:
        """Stores a snapshot, and its resources' normal forms when `forms` is given."""
        status = SnapshotStatus.of_sources(s.status for s in sources)
        snapshot = Snapshot(
            environment=environment, taken_at=taken_at, origin=origin, status=status
        )
        total = 0
        for position, source in enumerate(sources):
            manifest, count = (None, 0)
            if source.status == SourceStatus.OK:
                maker = forms.maker(source.type) if forms is not None else None
                manifest, count = self.documents.write_staged(source.stored, maker)
            total += count
            snapshot.sources.append(
                SnapshotSource(
                    position=position,
                    name=source.name,
                    type=source.type,
                    status=source.status,
                    error=source.error,
                    duration_ms=source.duration_ms,
                    resource_count=count,
                    manifest=manifest,
                    secrets=json.dumps(source.census) if source.census is not None else None,
                )
            )
        snapshot.resource_count = total
        self.session.add(snapshot)
        self.session.flush()
        return snapshot

    def snapshot(self, snapshot_id: int) -> Snapshot:
        if not 1 <= snapshot_id <= MAX_ID:
            raise NotFound(f"no snapshot #{snapshot_id}")
        snapshot = self.session.scalar(
            select(Snapshot)
            .where(Snapshot.id == snapshot_id)
            .options(selectinload(Snapshot.sources), selectinload(Snapshot.environment))
        )
        if snapshot is None:
            raise NotFound(f"no snapshot #{snapshot_id}")
        return snapshot

    def remove(self, snapshot_id: int) -> tuple[int, bool]:
        """Deletes a snapshot, its sources, the evaluations (stored reports) that judged it and
        a baseline that was it; comparisons that pointed at it are judged afresh. Returns how
        many stored reports went, and whether a baseline did."""
        session = self.session
        judged = or_(
            Evaluation.left_snapshot_id == snapshot_id, Evaluation.right_snapshot_id == snapshot_id
        )
        evaluation_ids = list(session.scalars(select(Evaluation.id).where(judged)))
        if evaluation_ids:
            session.execute(
                update(AlertEvent)
                .where(AlertEvent.evaluation_id.in_(evaluation_ids))
                .values(evaluation_id=None)
            )
            session.execute(delete(Evaluation).where(Evaluation.id.in_(evaluation_ids)))
        session.execute(
            update(ComparisonState)
            .where(
                or_(
                    ComparisonState.left_snapshot_id == snapshot_id,
                    ComparisonState.right_snapshot_id == snapshot_id,
                    ComparisonState.evaluation_id.in_(evaluation_ids or [-1]),
                )
            )
            .values(left_snapshot_id=None, right_snapshot_id=None, evaluation_id=None)
        )
        baseline = session.execute(delete(Baseline).where(Baseline.snapshot_id == snapshot_id))
        session.execute(
            update(Scan).where(Scan.snapshot_id == snapshot_id).values(snapshot_id=None)
        )
        session.execute(delete(SnapshotSource).where(SnapshotSource.snapshot_id == snapshot_id))
        session.execute(delete(Snapshot).where(Snapshot.id == snapshot_id))
        session.expire_all()
        session.flush()
        return len(evaluation_ids), bool(getattr(baseline, "rowcount", 0))

    def latest(self, environment: str, at_or_before: datetime | None = None) -> Snapshot | None:
        query = (
            select(Snapshot)
            .join(Snapshot.environment)
            .where(EnvironmentRow.name == environment)
            # the environment from the join itself, the sources in a second query
            .options(selectinload(Snapshot.sources), contains_eager(Snapshot.environment))
            .order_by(Snapshot.taken_at.desc(), Snapshot.id.desc())
            .limit(1)
        )
        if at_or_before is not None:
            query = query.where(Snapshot.taken_at <= at_or_before)
        return self.session.scalar(query)

    def latest_of(self, environments: Iterable[str]) -> dict[str, Snapshot]:
        """Each environment's latest snapshot, as `latest` gives it, for any number of
        environments in one query (and one for their sources); one with none is left out."""
        names = list(dict.fromkeys(environments))
        if not names:
            return {}
        found = self.session.scalars(_LATEST_OF, {"names": names})
        return {snapshot.environment.name: snapshot for snapshot in found}

    def latest_pair(self, source: str, target: str) -> tuple[Snapshot | None, Snapshot | None]:
        """The latest snapshots of a comparison's two sides, in one `latest_of`."""
        latest = self.latest_of((source, target))
        return latest.get(source), latest.get(target)

    def list_snapshots(self, environment: str, limit: int = 50) -> list[Snapshot]:
        return list(
            self.session.scalars(
                select(Snapshot)
                .join(Snapshot.environment)
                .where(EnvironmentRow.name == environment)
                .options(selectinload(Snapshot.sources))
                .order_by(Snapshot.taken_at.desc(), Snapshot.id.desc())
                .limit(limit)
            )
        )

    def resources(self, snapshot: Snapshot) -> dict[str, list[StoredResource]]:
        """Each ok source's resources, by source name."""
        manifests = {s.name: s.manifest for s in snapshot.sources if s.manifest}
        by_manifest = self.documents.read_manifests(list(set(manifests.values())))
        return {name: by_manifest[m] for name, m in manifests.items()}

    def source_categories(self, environment: str, source: str) -> set[str]:
        """The categories a source reported the last time it succeeded; all if it never did."""
        manifest = self.session.scalar(
            select(SnapshotSource.manifest)
            .join(Snapshot, Snapshot.id == SnapshotSource.snapshot_id)
            .join(EnvironmentRow, EnvironmentRow.id == Snapshot.environment_id)
            .where(
                EnvironmentRow.name == environment,
                SnapshotSource.name == source,
                SnapshotSource.status == SourceStatus.OK,
                SnapshotSource.manifest.is_not(None),
            )
            .order_by(Snapshot.taken_at.desc(), Snapshot.id.desc())
            .limit(1)
        )
        if manifest is None:
            return set(CATEGORIES)
        resources = self.documents.read_manifests([manifest])[manifest]
        return {r.category for r in resources} or set(CATEGORIES)

    def count_documents(self) -> int:
        from app.db.models import Document

        return int(self.session.scalar(select(func.count()).select_from(Document)) or 0)

    # ----------------------------------------------------------------- baselines
    def set_baseline(self, snapshot: Snapshot, set_by: str | None) -> None:
        row = self.session.get(Baseline, snapshot.environment_id)
        if row is None:
            row = Baseline(environment_id=snapshot.environment_id, snapshot_id=snapshot.id)
            self.session.add(row)
        row.snapshot_id = snapshot.id
        row.set_at = utcnow()
        row.set_by = set_by
        self.session.flush()

    def baseline_row(self, environment: str) -> Baseline | None:
        """The environment's baseline record (which snapshot, set when and by whom)."""
        return self.session.scalar(
            select(Baseline)
            .join(EnvironmentRow, EnvironmentRow.id == Baseline.environment_id)
            .where(EnvironmentRow.name == environment)
        )

    def clear_baseline(self, environment: str) -> int | None:
        """Forgets the environment's baseline; the snapshot id it was, or None."""
        row = self.baseline_row(environment)
        if row is None:
            return None
        snapshot_id = row.snapshot_id
        self.session.delete(row)
        self.session.flush()
        return snapshot_id

    def baseline(self, environment: str) -> Snapshot | None:
        snapshot_id = self.session.scalar(
            select(Baseline.snapshot_id)
            .join(EnvironmentRow, EnvironmentRow.id == Baseline.environment_id)
            .where(EnvironmentRow.name == environment)
        )
        return None if snapshot_id is None else self.snapshot(snapshot_id)

    # ----------------------------------------------------------------- scans (and their lock)
    def start_scan(self, environment: EnvironmentRow, trigger: str) -> Scan:
        """A running scan row, which is the environment's lock; ScanInProgress if one runs."""
        self._reap_stale(environment)
        try:
            with self.session.begin_nested():
                scan = Scan(
                    environment=environment,
                    status=ScanStatus.RUNNING,
                    trigger=trigger,
                    owner=process_owner(),
                )
                self.session.add(scan)
        except IntegrityError:
            running = self.running_scan(environment)
            if running is None:  # finished between our insert and this look
                return self.start_scan(environment, trigger)
            raise ScanInProgress(
                environment.name, running.id, running.owner, running.started_at.isoformat()
            ) from None
        return scan

    def running_scan(self, environment: EnvironmentRow) -> Scan | None:
        return self.session.scalar(
            select(Scan).where(
                Scan.environment_id == environment.id, Scan.status == ScanStatus.RUNNING
            )
        )

    def _reap_stale(self, environment: EnvironmentRow) -> None:
        running = self.running_scan(environment)
        if running is None:
            return
        host, _, pid = running.owner.rpartition(":")
        dead_here = host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))
        if dead_here or running.heartbeat_at < utcnow() - STALE_SCAN_AFTER:
            running.status = ScanStatus.ABANDONED
            running.finished_at = utcnow()
            running.error = f"abandoned: {running.owner} stopped before finishing"
            self.session.flush()

    def heartbeat(self, scan_id: int) -> None:
        self.session.execute(update(Scan).where(Scan.id == scan_id).values(heartbeat_at=utcnow()))

    def finish_scan(self, scan: Scan, snapshot: Snapshot | None, error: str | None = None) -> None:
        scan.status = snapshot.status if snapshot is not None else ScanStatus.FAILED
        scan.snapshot_id = snapshot.id if snapshot is not None else None
        scan.finished_at = utcnow()
        scan.error = error
        self.session.flush()

    def scan(self, scan_id: int) -> Scan:
        scan = self.session.get(Scan, scan_id) if 1 <= scan_id <= MAX_ID else None
        if scan is None:
            raise NotFound(f"no scan #{scan_id}")
        return scan


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
