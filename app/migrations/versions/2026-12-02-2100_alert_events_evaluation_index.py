"""alert events: an index on evaluation_id, for deleting evaluations (retention, snapshots rm)

Revision ID: 3d8f2a6c1b47
Revises: 9b3e61c07d4a
Create Date: 2026-12-02 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "3d8f2a6c1b47"
down_revision: str | None = "9b3e61c07d4a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index("ix_alert_events_evaluation", ["evaluation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_events_evaluation")
