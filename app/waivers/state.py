"""The stored waivers' state: one short string that changes whenever a waiver is added or
removed, which every stored judgement (an evaluation, a cached gate answer) is checked against.

Core SQL only (no ORM): `envparity diff` reads it on its fast path (app/reports/stored.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, text

from app.db.types import UTCDateTime

# Changes whenever a stored waiver is added or removed (SQLite may reuse the highest id
# after a delete: the newest creation time tells them apart).
WAIVER_STATE_SQL = (
    "(SELECT COUNT(*) FROM waivers) AS waiver_count, (SELECT MAX(id) FROM waivers) AS waiver_max,"
    " (SELECT MAX(created_at) FROM waivers) AS waiver_newest"
)
_WAIVERS = text(f"SELECT {WAIVER_STATE_SQL}").columns(waiver_newest=UTCDateTime())


def waiver_state(connection: Connection) -> str:
    return waiver_state_of(connection.execute(_WAIVERS).one())


class WaiverStateRow(Protocol):
    """A row that selected WAIVER_STATE_SQL."""

    @property
    def waiver_count(self) -> int: ...
    @property
    def waiver_max(self) -> int | None: ...
    @property
    def waiver_newest(self) -> datetime | None: ...


def waiver_state_of(row: WaiverStateRow) -> str:
    """The state from a row that selected WAIVER_STATE_SQL (with waiver_newest as UTCDateTime)."""
    newest = row.waiver_newest.isoformat() if row.waiver_newest else ""
    return f"{row.waiver_count}:{row.waiver_max}:{newest}"
