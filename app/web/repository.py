"""The dashboard's own queries: last scans, scan history, when each source last succeeded."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.db.models import EnvironmentRow, Scan, Snapshot, SnapshotSource
from app.states import SourceStatus


class DashboardRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def last_scans(self) -> dict[str, Scan]:
        """Each environment's most recent scan, by environment name."""
        newest = select(func.max(Scan.id)).group_by(Scan.environment_id)
        rows = self.session.scalars(
            select(Scan).where(Scan.id.in_(newest)).options(selectinload(Scan.environment))
        )
        return {row.environment.name: row for row in rows}

    def scans(self, environment: str, limit: int) -> list[Scan]:
        """An environment's scans, newest first."""
        return list(
            self.session.scalars(
                select(Scan)
                .join(Scan.environment)
                .where(EnvironmentRow.name == environment)
                .order_by(Scan.started_at.desc(), Scan.id.desc())
                .limit(limit)
            )
        )

    def last_ok(self, environment: str) -> dict[str, datetime]:
        """When each source of an environment last collected successfully, by source name."""
        rows = self.session.execute(
            select(SnapshotSource.name, func.max(Snapshot.taken_at))
            .join(Snapshot, Snapshot.id == SnapshotSource.snapshot_id)
            .join(EnvironmentRow, EnvironmentRow.id == Snapshot.environment_id)
            .where(EnvironmentRow.name == environment, SnapshotSource.status == SourceStatus.OK)
            .group_by(SnapshotSource.name)
        )
        return {name: taken for name, taken in rows}
