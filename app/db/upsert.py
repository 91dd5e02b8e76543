"""INSERT ... ON CONFLICT in the session's own dialect.

Two writers may insert the same row at the same moment (a scan's evaluation and a gate's
diff, two stores of one document): the second insert must then be a no-op, or merge into
the stored row in the same statement, rather than fail on the UNIQUE constraint or
overwrite what the other wrote. Each dialect's insert construct is imported on first
write, so read-only commands never load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.db.base import Base

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

    DialectInsert = postgresql.Insert | sqlite.Insert


def dialect_insert(session: Session, model: type[Base]) -> DialectInsert:
    """An INSERT of `model`'s table with the dialect's `on_conflict_do_*` methods."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model)


def insert_or_ignore(session: Session, model: type[Base]) -> DialectInsert:
    """An INSERT of `model`'s table that skips the rows whose key is already stored."""
    return dialect_insert(session, model).on_conflict_do_nothing()
