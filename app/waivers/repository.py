"""Stored waivers: add, list, remove, and the ones in force now."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.db.models import WaiverRow
from app.db.types import MAX_ID
from app.diff.model import Waiver
from app.errors import NotFound
from app.states import WaiverOrigin
from app.waivers.state import waiver_state


class WaiverRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: WaiverRow) -> WaiverRow:
        self.session.add(row)
        self.session.flush()
        return row

    def all(self) -> list[WaiverRow]:
        return list(self.session.scalars(select(WaiverRow).order_by(WaiverRow.id)))

    def state(self) -> str:
        """Changes whenever a stored waiver is added or removed."""
        return waiver_state(self.session.connection())

    def in_force(self, now: datetime) -> list[Waiver]:
        rows = self.session.scalars(
            select(WaiverRow)
            .where(or_(WaiverRow.expires_at.is_(None), WaiverRow.expires_at > now))
            .order_by(WaiverRow.id)
        )
        return [as_waiver(row) for row in rows]

    def remove(self, waiver_id: int) -> None:
        row = self.session.get(WaiverRow, waiver_id) if 1 <= waiver_id <= MAX_ID else None
        if row is None:
            raise NotFound(f"no waiver #{waiver_id}")
        self.session.delete(row)
        self.session.flush()


def as_waiver(row: WaiverRow) -> Waiver:
    return Waiver(
        reason=row.reason,
        comparison=row.comparison,
        category=row.category,
        resource_type=row.resource_type,
        key=row.key,
        path=row.path,
        owner=row.owner,
        expires=row.expires_at,
        id=row.id,
        origin=WaiverOrigin.DATABASE,
    )
