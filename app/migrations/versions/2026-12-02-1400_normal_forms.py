"""normal forms: each stored chunk's resources normalized under their environment's vars

Revision ID: 5c1f0e7a9b21
Revises: 86ad9e2435f3
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1f0e7a9b21"
down_revision: str | None = "86ad9e2435f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "normal_forms",
        sa.Column("context", sa.String(length=64), nullable=False),
        sa.Column("chunk", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("context", "chunk", name=op.f("pk_normal_forms")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("normal_forms")
