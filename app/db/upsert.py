"""INSERT ... ON CONFLICT DO NOTHING in the session's own dialect.

Two writers may insert the same row at the same moment (a scan's evaluation and a gate's
diff, two stores of one document): the second insert must then be a no-op rather than a
UNIQUE-constraint failure. Each dialect's insert construct is imported on first write, so
read-only commands never load it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def insert_or_ignore(session: Session, model: Any) -> Any:
    """An INSERT of `model`'s table that skips the rows whose key is already stored."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing()
