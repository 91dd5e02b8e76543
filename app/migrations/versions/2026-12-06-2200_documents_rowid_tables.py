"""documents and normal forms as rowid tables on SQLite: rows of a kilobyte or more

A WITHOUT ROWID table keeps whole rows in its key's b-tree, where a row may take only a
small share of a page before the rest spills to overflow pages of its own: each stored
document of about a kilobyte took a page or more. As ordinary rowid tables (the hash keeps
its unique index), a first push of 100,000 resources writes its documents about twice as
fast, into less than half the file. PostgreSQL is unchanged.

Revision ID: 7e2b9d4f0a16
Revises: 3d8f2a6c1b47
Create Date: 2026-12-06 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "7e2b9d4f0a16"
down_revision: str | None = "3d8f2a6c1b47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (its columns and key, as the models declare them; the key's columns)
_TABLES = {
    "documents": (
        "hash VARCHAR(64) NOT NULL, body TEXT NOT NULL, CONSTRAINT pk_documents PRIMARY KEY (hash)",
        "hash, body",
    ),
    "normal_forms": (
        "context VARCHAR(64) NOT NULL, chunk VARCHAR(64) NOT NULL, body TEXT NOT NULL, "
        "CONSTRAINT pk_normal_forms PRIMARY KEY (context, chunk)",
        "context, chunk, body",
    ),
}


def _rebuild(rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    suffix = "" if rowid else " WITHOUT ROWID"
    for table, (columns, names) in _TABLES.items():
        op.execute(f"CREATE TABLE _{table}_new ({columns}){suffix}")
        op.execute(f"INSERT INTO _{table}_new ({names}) SELECT {names} FROM {table}")
        op.execute(f"DROP TABLE {table}")
        op.execute(f"ALTER TABLE _{table}_new RENAME TO {table}")


def upgrade() -> None:
    _rebuild(rowid=True)


def downgrade() -> None:
    _rebuild(rowid=False)
